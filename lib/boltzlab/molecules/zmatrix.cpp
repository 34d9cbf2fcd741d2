#include "boltzlab/molecules/zmatrix.hpp"

#include <string>
#include <utility>
#include <vector>

#include "boltzlab/core/error.hpp"

namespace boltzlab::molecules {

void ZMatrix::validate(const std::string& context) const {
  auto fail = [&](const std::string& msg) { throw ConfigError(context + ": " + msg); };
  if (n_atoms < 3) fail("n_atoms is " + std::to_string(n_atoms) + ", but must be >= 3");
  if (anchors.size() != 3) fail("anchors must list exactly 3 atoms, got " + std::to_string(anchors.size()));
  if (!atom_names.empty() && static_cast<std::int64_t>(atom_names.size()) != n_atoms) {
    fail("atom_names has " + std::to_string(atom_names.size()) + " names for " + std::to_string(n_atoms) +
         " atoms");
  }
  if (static_cast<std::int64_t>(rows.size()) != n_atoms - 3) {
    fail("z_matrix has " + std::to_string(rows.size()) + " rows, but " + std::to_string(n_atoms) +
         " atoms with 3 anchors need " + std::to_string(n_atoms - 3));
  }
  std::vector<int> placed(static_cast<std::size_t>(n_atoms), 0);
  auto in_range = [&](std::int64_t a) { return a >= 0 && a < n_atoms; };
  for (std::size_t q = 0; q < anchors.size(); ++q) {
    const auto a = anchors[q];
    if (!in_range(a)) fail("anchors[" + std::to_string(q) + "] is " + std::to_string(a) + ", out of [0, n_atoms)");
    if (placed[a]) fail("anchor atom " + std::to_string(a) + " is listed twice");
    placed[a] = 1;
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const std::string where = "z_matrix[" + std::to_string(r) + "] (atom " + std::to_string(row.atom) + ")";
    if (!in_range(row.atom)) fail(where + ": atom out of [0, n_atoms)");
    if (placed[row.atom]) fail(where + ": atom " + std::to_string(row.atom) + " is placed twice");
    const std::int64_t refs[3] = {row.bond, row.angle, row.torsion};
    const char* names[3] = {"bond", "angle", "torsion"};
    for (int c = 0; c < 3; ++c) {
      if (!in_range(refs[c])) fail(where + ": " + names[c] + " partner " + std::to_string(refs[c]) + " out of range");
      if (refs[c] == row.atom) fail(where + ": " + names[c] + " partner is the atom itself");
      if (!placed[refs[c]]) {
        fail(where + ": " + names[c] + " partner " + std::to_string(refs[c]) + " is not placed before it");
      }
    }
    if (row.bond == row.angle || row.bond == row.torsion || row.angle == row.torsion) {
      fail(where + ": bond, angle and torsion partners must be distinct");
    }
    placed[row.atom] = 1;
  }
  for (std::size_t c = 0; c < chiral_centers.size(); ++c) {
    const auto& cc = chiral_centers[c];
    const std::string where = "chiral_centers[" + std::to_string(c) + "]";
    for (auto a : {cc.center, cc.a, cc.b, cc.d}) {
      if (!in_range(a)) fail(where + ": atom " + std::to_string(a) + " out of range");
    }
    if (cc.center == cc.a || cc.center == cc.b || cc.center == cc.d || cc.a == cc.b || cc.a == cc.d ||
        cc.b == cc.d) {
      fail(where + ": the centre and its three neighbours must be distinct atoms");
    }
    if (cc.expected_sign != 1 && cc.expected_sign != -1) {
      fail(where + ": sign is " + std::to_string(cc.expected_sign) + ", but must be +1 or -1");
    }
  }
}

ZMatrix zmatrix_from_json(const Json& object, const std::string& context) {
  if (!object.is_object()) throw ConfigError(context + ": z-matrix must be a JSON object");
  JsonReader reader(object, context);
  ZMatrix z;
  z.n_atoms = reader.get_int("n_atoms");
  auto int_list = [&](const Json& j, const std::string& where, std::size_t expect) {
    if (!j.is_array() || (expect && j.size() != expect)) {
      throw ConfigError(where + ": must be an array" + (expect ? " of " + std::to_string(expect) + " integers" : ""));
    }
    std::vector<std::int64_t> out;
    for (const auto& e : j) {
      if (!e.is_number_integer()) throw ConfigError(where + ": entries must be integers, got " + e.dump());
      out.push_back(e.get<std::int64_t>());
    }
    return out;
  };
  z.anchors = int_list(reader.get_json("anchors"), reader.context_of("anchors"), 3);
  const Json& rows = reader.get_json("z_matrix");
  if (!rows.is_array()) throw ConfigError(reader.context_of("z_matrix") + ": must be an array of [i, j, k, l] rows");
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto v = int_list(rows[r], reader.context_of("z_matrix") + "[" + std::to_string(r) + "]", 4);
    z.rows.push_back({v[0], v[1], v[2], v[3]});
  }
  if (reader.has("chiral_centers")) {
    const Json& centers = reader.get_json("chiral_centers");
    if (!centers.is_array()) throw ConfigError(reader.context_of("chiral_centers") + ": must be an array");
    for (std::size_t c = 0; c < centers.size(); ++c) {
      const std::string where = reader.context_of("chiral_centers") + "[" + std::to_string(c) + "]";
      if (!centers[c].is_object()) throw ConfigError(where + ": must be an object");
      JsonReader cr(centers[c], where);
      ChiralCenter cc;
      cc.name = cr.get_string("name", "center " + std::to_string(c));
      cc.center = cr.get_int("center");
      const auto nb = int_list(cr.get_json("neighbors"), cr.context_of("neighbors"), 3);
      cc.a = nb[0];
      cc.b = nb[1];
      cc.d = nb[2];
      cc.expected_sign = static_cast<int>(cr.get_int("sign"));
      cr.finish();
      z.chiral_centers.push_back(cc);
    }
  } else {
    reader.ignore("chiral_centers");
  }
  if (reader.has("atom_names")) {
    const Json& names = reader.get_json("atom_names");
    if (!names.is_array()) throw ConfigError(reader.context_of("atom_names") + ": must be an array of strings");
    for (const auto& n : names) {
      if (!n.is_string()) throw ConfigError(reader.context_of("atom_names") + ": entries must be strings");
      z.atom_names.push_back(n.get<std::string>());
    }
  } else {
    reader.ignore("atom_names");
  }
  reader.finish();
  z.validate(context);
  return z;
}

Json zmatrix_to_json(const ZMatrix& zmatrix_) {
  Json j;
  j["n_atoms"] = zmatrix_.n_atoms;
  j["anchors"] = zmatrix_.anchors;
  Json rows = Json::array();
  for (const auto& r : zmatrix_.rows) rows.push_back({r.atom, r.bond, r.angle, r.torsion});
  j["z_matrix"] = rows;
  Json centers = Json::array();
  for (const auto& c : zmatrix_.chiral_centers) {
    centers.push_back({{"name", c.name}, {"center", c.center}, {"neighbors", Json::array({c.a, c.b, c.d})},
                       {"sign", c.expected_sign}});
  }
  j["chiral_centers"] = centers;
  if (!zmatrix_.atom_names.empty()) j["atom_names"] = zmatrix_.atom_names;
  return j;
}

}  // namespace boltzlab::molecules
