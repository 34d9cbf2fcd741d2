#include "boltzlab/io/pdb.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "boltzlab/core/error.hpp"

namespace fs = std::filesystem;

namespace boltzlab {
namespace {

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Columns [first, last] (1-based, inclusive) of a fixed-width record, blank-padded.
std::string columns(const std::string& line, std::size_t first, std::size_t last) {
  if (line.size() < first) return "";
  return line.substr(first - 1, std::min(last, line.size()) - first + 1);
}

bool parse_double(const std::string& field, double& out) {
  const std::string t = trim(field);
  if (t.empty()) return false;
  char* end = nullptr;
  out = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && std::isfinite(out);
}

// Element from the 4-character atom-name field (columns 13–16): PDB aligns
// one-letter elements to column 14, so a digit or blank in column 13 means the
// element starts at column 14; otherwise a two-letter element like "FE" could start
// at 13, but for the biomolecular names we read the first letter is the element.
std::string element_from_name(const std::string& name_field) {
  for (char c : name_field) {
    if (std::isalpha(static_cast<unsigned char>(c))) return std::string(1, static_cast<char>(std::toupper(c)));
  }
  return "X";
}

}  // namespace

PdbStructure read_pdb(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path.string() + ": cannot open PDB file");
  PdbStructure s;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string record = columns(line, 1, 6);
    if (record.rfind("ENDMDL", 0) == 0 || record.rfind("END", 0) == 0) {
      if (!s.topology.atom_names.empty()) break;  // first model only
      continue;
    }
    if (trim(record) != "ATOM" && record != "HETATM") continue;
    const std::string where = path.string() + ":" + std::to_string(line_no);
    if (line.size() < 54) throw IoError(where + ": ATOM record shorter than 54 columns");
    double xyz[3];
    for (int k = 0; k < 3; ++k) {
      const std::string f = columns(line, 31 + 8 * static_cast<std::size_t>(k), 38 + 8 * static_cast<std::size_t>(k));
      if (!parse_double(f, xyz[k])) throw IoError(where + ": coordinate '" + trim(f) + "' is not a number");
      s.positions_nm.push_back(0.1 * xyz[k]);
    }
    const std::string name_field = columns(line, 13, 16);
    s.topology.atom_names.push_back(trim(name_field));
    s.topology.residue_names.push_back(trim(columns(line, 18, 20)));
    const std::string resseq = trim(columns(line, 23, 26));
    int resid = 0;
    try {
      resid = resseq.empty() ? 0 : std::stoi(resseq);
    } catch (const std::exception&) {
      throw IoError(where + ": residue number '" + resseq + "' is not an integer");
    }
    s.topology.residue_ids.push_back(resid);
    std::string element = trim(columns(line, 77, 78));
    if (element.empty() || !std::isalpha(static_cast<unsigned char>(element[0]))) {
      element = element_from_name(name_field);
    } else {
      element[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(element[0])));
      for (std::size_t k = 1; k < element.size(); ++k)
        element[k] = static_cast<char>(std::tolower(static_cast<unsigned char>(element[k])));
    }
    s.topology.elements.push_back(element);
  }
  if (s.topology.atom_names.empty()) throw IoError(path.string() + ": no ATOM or HETATM records");
  return s;
}

std::vector<double> read_amber_coordinates(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path.string() + ": cannot open Amber coordinate file");
  std::string title, count_line;
  if (!std::getline(in, title) || !std::getline(in, count_line)) {
    throw IoError(path.string() + ": truncated Amber coordinate file (no atom count)");
  }
  std::istringstream cs(count_line);
  long long n = 0;
  if (!(cs >> n) || n <= 0) throw IoError(path.string() + ": line 2: atom count '" + trim(count_line) + "' is not a positive integer");
  std::vector<double> x;
  x.reserve(static_cast<std::size_t>(3 * n));
  std::string line;
  std::size_t line_no = 2;
  while (x.size() < static_cast<std::size_t>(3 * n) && std::getline(in, line)) {
    ++line_no;
    // Fixed 12-character fields (Fortran 6F12.7); they may run together without blanks.
    for (std::size_t pos = 0; pos < line.size() && x.size() < static_cast<std::size_t>(3 * n); pos += 12) {
      const std::string f = line.substr(pos, 12);
      if (trim(f).empty()) break;
      double v = 0;
      if (!parse_double(f, v)) {
        throw IoError(path.string() + ":" + std::to_string(line_no) + ": coordinate '" + trim(f) + "' is not a number");
      }
      x.push_back(0.1 * v);
    }
  }
  if (x.size() != static_cast<std::size_t>(3 * n)) {
    throw IoError(path.string() + ": expected " + std::to_string(3 * n) + " coordinates, found " + std::to_string(x.size()));
  }
  return x;
}

std::string format_pdb_model(const Topology& topology, const double* positions_nm, int model) {
  std::string out;
  char buf[128];
  if (model > 0) {
    std::snprintf(buf, sizeof buf, "MODEL     %4d\n", model);
    out += buf;
  }
  for (std::size_t i = 0; i < topology.atoms(); ++i) {
    const std::string& name = topology.atom_names[i];
    const std::string& element = topology.elements[i];
    // Names shorter than 4 characters start in column 14 when the element has one letter.
    std::string name_field = name.size() < 4 && element.size() < 2 ? " " + name : name;
    std::snprintf(buf, sizeof buf, "ATOM  %5zu %-4.4s %3.3s A%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2.2s\n",
                  (i + 1) % 100000, name_field.c_str(), topology.residue_names[i].c_str(),
                  topology.residue_ids[i] % 10000, 10.0 * positions_nm[3 * i], 10.0 * positions_nm[3 * i + 1],
                  10.0 * positions_nm[3 * i + 2], element.c_str());
    out += buf;
  }
  out += model > 0 ? "ENDMDL\n" : "";
  return out;
}

void write_pdb_models(const fs::path& path, const Topology& topology, const RowMatrix& frames) {
  if (static_cast<std::size_t>(frames.cols()) != 3 * topology.atoms()) {
    throw DomainError(path.string() + ": frames have " + std::to_string(frames.cols()) + " columns, but the topology has " +
                      std::to_string(topology.atoms()) + " atoms");
  }
  std::ofstream out(path);
  if (!out) throw IoError(path.string() + ": cannot write PDB file");
  out << "REMARK   1 WRITTEN BY BOLTZLAB, COORDINATES IN ANGSTROM\n";
  for (Eigen::Index f = 0; f < frames.rows(); ++f) out << format_pdb_model(topology, frames.row(f).data(), static_cast<int>(f) + 1);
  out << "END\n";
  if (!out) throw IoError(path.string() + ": write failed");
}

}  // namespace boltzlab
