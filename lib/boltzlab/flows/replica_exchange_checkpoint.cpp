#include "boltzlab/flows/replica_exchange_checkpoint.hpp"

#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <OpenMM.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/json_file.hpp"

namespace fs = std::filesystem;

namespace boltzlab {
namespace {

constexpr char kMagic[] = "BOLTZLAB-REX\n";
constexpr std::size_t kMagicSize = sizeof(kMagic) - 1;

/// Appends raw doubles to a byte buffer.
struct Writer {
  std::string bytes;
  void put(const double* p, std::size_t n) { bytes.append(reinterpret_cast<const char*>(p), n * sizeof(double)); }
  void put(double v) { put(&v, 1); }
  void put(const std::vector<double>& v) { put(v.data(), v.size()); }
};

/// Reads raw doubles back, failing with the file's name when it runs out.
struct Reader {
  const std::string& bytes;
  std::size_t pos;
  std::string file;
  void get(double* p, std::size_t n) {
    const std::size_t size = n * sizeof(double);
    if (pos + size > bytes.size()) throw IoError(file + ": checkpoint is truncated");
    std::memcpy(p, bytes.data() + pos, size);
    pos += size;
  }
  double get() {
    double v = 0.0;
    get(&v, 1);
    return v;
  }
  void get(std::vector<double>& v, std::size_t n) {
    v.resize(n);
    get(v.data(), n);
  }
};

Json rng_json(const Rng& rng) {
  const Rng::State s = rng.state();
  return {{"words", s.words}, {"has_cached", s.has_cached}};
}

Rng rng_from(const Json& j, double cached) {
  Rng::State s;
  s.words = j.at("words").get<std::array<std::uint64_t, 4>>();
  s.has_cached = j.at("has_cached").get<bool>();
  s.cached = cached;
  Rng rng;
  rng.set_state(s);
  return rng;
}

/// FNV-1a (64 bit) of the target's serialized System, in hex: two Systems with the same
/// file name and size (another potential of the same dimension) still differ here.
std::string system_fingerprint(const OpenMMTarget& target) {
  std::ostringstream xml;
  OpenMM::XmlSerializer::serialize<OpenMM::System>(&target.system(), "System", xml);
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : xml.str()) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  std::ostringstream hex;
  hex << std::hex << h;
  return hex.str();
}

Json header_json(const ReplicaExchangeState& st, const ReplicaExchangeOptions& o, const OpenMMTarget& target) {
  Json streams = Json::array();
  for (const Rng& r : st.streams) streams.push_back(rng_json(r));
  const ReplicaExchangeResult& r = st.result;
  return {{"checkpoint_format_version", kReplicaExchangeCheckpointVersion},
          {"options", o.to_json()},
          {"target", {{"name", target.name()}, {"dim", target.dim()}, {"system", system_fingerprint(target)}}},
          {"exchanges_done", r.exchanges_done},
          {"frames_done", st.frames_done},
          {"production_done", st.production_done},
          {"state_of_replica", st.state_of_replica},
          {"trip_label", st.trip_label},
          {"round_trips", r.round_trips},
          {"non_finite_replicas", r.non_finite_replicas},
          {"streams", streams},
          {"swap_stream", rng_json(st.swap_stream)}};
}

std::string payload(const ReplicaExchangeState& st) {
  Writer w;
  for (const LangevinState& s : st.replicas) {
    w.put(s.x);
    w.put(s.v);
    w.put(s.f);
    w.put(s.energy);
  }
  for (const Rng& r : st.streams) w.put(r.state().cached);
  w.put(st.swap_stream.state().cached);
  const ReplicaExchangeResult& r = st.result;
  const std::size_t K = st.replicas.size();
  for (std::size_t k = 0; k < K; ++k) {
    const std::size_t cols = static_cast<std::size_t>(r.frames[k].cols());
    w.put(r.frames[k].data(), st.frames_done * cols);  // row-major: the first frames_done rows
    w.put(r.potential_energies[k].data(), st.frames_done);
  }
  w.put(st.kinetic_temperature_sum);
  w.put(r.replica_states.data(), st.production_done * K);
  w.put(r.swap_attempts.data(), K * K);
  w.put(r.swap_accepted.data(), K * K);
  for (double v : {r.start_energy, r.minimized_energy, r.wall_seconds, r.md_seconds}) w.put(v);
  return w.bytes;
}

}  // namespace

void write_replica_exchange_checkpoint(const fs::path& path, const ReplicaExchangeState& st,
                                       const ReplicaExchangeOptions& options, const OpenMMTarget& target) {
  const std::string header = header_json(st, options, target).dump();
  const std::string data = payload(st);
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(tmp.string() + ": cannot open checkpoint for writing");
    const auto n = static_cast<std::uint64_t>(header.size());
    out.write(kMagic, static_cast<std::streamsize>(kMagicSize));
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) throw IoError(tmp.string() + ": checkpoint write failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw IoError(path.string() + ": cannot move checkpoint into place: " + ec.message());
}

namespace {

/// \throws ConfigError naming the first option in which the checkpoint differs from
/// `o` (production_ns may differ; checked against what was recorded by the caller).
void check_compatible(const Json& header, const ReplicaExchangeOptions& o, const OpenMMTarget& target,
                      const std::string& file) {
  const Json& t = header.at("target");
  if (t.at("name").get<std::string>() != target.name() || t.at("dim").get<std::size_t>() != target.dim()) {
    throw ConfigError("resume: checkpoint '" + file + "' is of target '" + t.at("name").get<std::string>() +
                      "' (dimension " + std::to_string(t.at("dim").get<std::size_t>()) + "), not '" + target.name() +
                      "' (" + std::to_string(target.dim()) + ")");
  }
  // Checkpoints written before the fingerprint existed have none.
  if (t.contains("system") && t.at("system").get<std::string>() != system_fingerprint(target)) {
    throw ConfigError("resume: checkpoint '" + file + "' is of another System than target '" + target.name() +
                      "' (same name and dimension, other force field or parameters)");
  }
  const Json saved = header.at("options");
  const Json now = o.to_json();
  for (const auto& [key, value] : now.items()) {
    if (key == "production_ns") continue;
    if (!saved.contains(key) || saved.at(key) != value) {
      throw ConfigError("resume: " + key + " is " + value.dump() + ", but the checkpoint '" + file + "' was run with " +
                        (saved.contains(key) ? saved.at(key).dump() : std::string("none")));
    }
  }
}

/// The magic, the header JSON and the offset of the arrays. \throws IoError.
Json read_header(const std::string& bytes, const std::string& file, std::size_t& pos) {
  if (bytes.size() < kMagicSize + 8 || bytes.compare(0, kMagicSize, kMagic) != 0) {
    throw IoError(file + ": not a replica-exchange checkpoint");
  }
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data() + kMagicSize, sizeof n);
  pos = kMagicSize + sizeof n;
  if (n > bytes.size() - pos) throw IoError(file + ": checkpoint is truncated");
  Json header;
  try {
    header = parse_json(std::string_view(bytes).substr(pos, n), "header");
  } catch (const std::exception& e) {
    throw IoError(file + ": malformed checkpoint header: " + e.what());
  }
  pos += n;
  const int version = header.value("checkpoint_format_version", 0);
  if (version != kReplicaExchangeCheckpointVersion) {
    throw IoError(file + ": checkpoint format version " + std::to_string(version) + ", this build reads " +
                  std::to_string(kReplicaExchangeCheckpointVersion));
  }
  return header;
}

/// The counters, permutation and streams of the header into `st`.
void restore_header(const Json& h, ReplicaExchangeState& st, std::size_t K, const std::string& file) {
  st.result.exchanges_done = h.at("exchanges_done").get<std::size_t>();
  st.frames_done = h.at("frames_done").get<std::size_t>();
  st.production_done = h.at("production_done").get<std::size_t>();
  st.state_of_replica = h.at("state_of_replica").get<std::vector<std::size_t>>();
  st.trip_label = h.at("trip_label").get<std::vector<int>>();
  st.result.round_trips = h.at("round_trips").get<std::vector<std::size_t>>();
  st.result.non_finite_replicas = h.at("non_finite_replicas").get<std::size_t>();
  if (st.state_of_replica.size() != K || st.trip_label.size() != K || st.result.round_trips.size() != K ||
      h.at("streams").size() != K) {
    throw IoError(file + ": checkpoint holds another number of replicas");
  }
  if (st.frames_done > static_cast<std::size_t>(st.result.frames[0].rows()) ||
      st.production_done > static_cast<std::size_t>(st.result.replica_states.rows())) {
    throw ConfigError("resume: production_ns is shorter than what the checkpoint '" + file + "' already recorded");
  }
}

void restore_payload(Reader& in, ReplicaExchangeState& st, const Json& h, std::size_t K, std::size_t d) {
  st.replicas.assign(K, LangevinState{});
  for (LangevinState& s : st.replicas) {
    in.get(s.x, d);
    in.get(s.v, d);
    in.get(s.f, d);
    s.energy = in.get();
  }
  st.streams.clear();
  for (std::size_t r = 0; r < K; ++r) st.streams.push_back(rng_from(h.at("streams")[r], in.get()));
  st.swap_stream = rng_from(h.at("swap_stream"), in.get());
  ReplicaExchangeResult& r = st.result;
  for (std::size_t k = 0; k < K; ++k) {
    in.get(r.frames[k].data(), st.frames_done * d);
    in.get(r.potential_energies[k].data(), st.frames_done);
  }
  in.get(st.kinetic_temperature_sum, K);
  // replica_states is row-major with K columns: the first production_done rows.
  in.get(r.replica_states.data(), st.production_done * K);
  in.get(r.swap_attempts.data(), K * K);
  in.get(r.swap_accepted.data(), K * K);
  r.start_energy = in.get();
  r.minimized_energy = in.get();
  r.wall_seconds = in.get();
  r.md_seconds = in.get();
  if (in.pos != in.bytes.size()) throw IoError(in.file + ": checkpoint has trailing data");
}

}  // namespace

void read_replica_exchange_checkpoint(const fs::path& path, ReplicaExchangeState& st,
                                      const ReplicaExchangeOptions& options, const OpenMMTarget& target) {
  const std::string file = path.string();
  std::ifstream f(path, std::ios::binary);
  if (!f || fs::is_directory(path)) throw IoError("resume: cannot open checkpoint '" + file + "'");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::size_t pos = 0;
  const Json h = read_header(bytes, file, pos);
  const std::size_t K = options.temperatures.size();
  try {
    check_compatible(h, options, target, file);
    restore_header(h, st, K, file);
  } catch (const Json::exception& e) {
    throw IoError(file + ": malformed checkpoint header: " + e.what());
  }
  Reader in{bytes, pos, file};
  try {
    restore_payload(in, st, h, K, target.dim());
  } catch (const Json::exception& e) {
    throw IoError(file + ": malformed checkpoint header: " + e.what());
  }
}

}  // namespace boltzlab
