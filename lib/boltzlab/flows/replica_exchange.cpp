#include "boltzlab/flows/replica_exchange.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/io/seed.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/progress.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/flows/replica_exchange_checkpoint.hpp"

namespace boltzlab {

std::string swap_scheme_name(SwapScheme scheme) {
  return scheme == SwapScheme::kNeighbors ? "neighbors" : "all-pairs";
}

SwapScheme parse_swap_scheme(const std::string& name, const std::string& context) {
  if (name == "neighbors") return SwapScheme::kNeighbors;
  if (name == "all-pairs") return SwapScheme::kAllPairs;
  std::string msg = context + ": unknown swap scheme '" + name + "'";
  const std::string guess = closest_key(name, {"neighbors", "all-pairs"});
  if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
  throw ConfigError(msg + "; expected 'neighbors' or 'all-pairs'");
}

namespace {

/// round(a / b) when a / b is a whole number (to 1e-6 relative), else SIZE_MAX.
std::size_t whole_ratio(double a, double b) {
  const double r = a / b;
  if (!std::isfinite(r) || std::abs(r - std::round(r)) > 1e-6 * std::max(1.0, r)) {
    return std::numeric_limits<std::size_t>::max();
  }
  return static_cast<std::size_t>(std::llround(r));
}

void check_positive(double v, const std::string& name, const std::string& unit) {
  if (!(v > 0) || !std::isfinite(v)) throw ConfigError(name + ": is " + format_number(v) + unit + ", but must be > 0");
}

void validate_temperatures(const std::vector<double>& t) {
  if (t.size() < 2) {
    throw ConfigError("temperatures: " + std::to_string(t.size()) + " given, but replica exchange needs at least 2");
  }
  for (std::size_t k = 0; k < t.size(); ++k) {
    if (!(t[k] > 0) || !std::isfinite(t[k])) {
      throw ConfigError("temperatures: T[" + std::to_string(k) + "] is " + format_number(t[k]) + " K, but must be > 0");
    }
    if (k > 0 && !(t[k] > t[k - 1])) {
      throw ConfigError("temperatures: must be strictly ascending, but T[" + std::to_string(k) + "] = " +
                        format_number(t[k]) + " K follows " + format_number(t[k - 1]) + " K");
    }
  }
}

}  // namespace

void ReplicaExchangeOptions::validate() const {
  validate_temperatures(temperatures);
  check_positive(timestep_fs, "timestep_fs", " fs");
  check_positive(friction_per_ps, "friction_per_ps", " /ps");
  check_positive(exchange_interval_ps, "exchange_interval_ps", " ps");
  check_positive(frame_interval_ps, "frame_interval_ps", " ps");
  check_positive(production_ps, "production_ns", " ps");
  const std::size_t kNotWhole = std::numeric_limits<std::size_t>::max();
  const std::size_t steps = whole_ratio(exchange_interval_ps * 1000.0, timestep_fs);
  if (steps == kNotWhole || steps < 1) {
    throw ConfigError("exchange_interval_ps: " + format_number(exchange_interval_ps) + " ps is not a whole number of " +
                      format_number(timestep_fs) + " fs steps");
  }
  const std::size_t per_frame = whole_ratio(frame_interval_ps, exchange_interval_ps);
  if (per_frame == kNotWhole || per_frame < 1) {
    throw ConfigError("frame_interval_ps: " + format_number(frame_interval_ps) +
                      " ps is not a whole multiple of the exchange interval (" + format_number(exchange_interval_ps) +
                      " ps)");
  }
  if (!(equilibration_ps >= 0) || !std::isfinite(equilibration_ps) ||
      whole_ratio(equilibration_ps, exchange_interval_ps) == kNotWhole) {
    throw ConfigError("equilibration_ps: is " + format_number(equilibration_ps) +
                      " ps, but must be >= 0 and a whole number of exchange intervals (" +
                      format_number(exchange_interval_ps) + " ps)");
  }
  const std::size_t frames = whole_ratio(production_ps, frame_interval_ps);
  if (frames == kNotWhole || frames < 1) {
    throw ConfigError("production_ns: " + format_number(production_ps / 1000.0) +
                      " ns is not a whole (non-zero) number of frame intervals (" + format_number(frame_interval_ps) +
                      " ps)");
  }
}

std::size_t ReplicaExchangeOptions::steps_per_exchange() const {
  return whole_ratio(exchange_interval_ps * 1000.0, timestep_fs);
}
std::size_t ReplicaExchangeOptions::equilibration_exchanges() const {
  return whole_ratio(equilibration_ps, exchange_interval_ps);
}
std::size_t ReplicaExchangeOptions::production_exchanges() const {
  return whole_ratio(production_ps, exchange_interval_ps);
}
std::size_t ReplicaExchangeOptions::exchanges_per_frame() const {
  return whole_ratio(frame_interval_ps, exchange_interval_ps);
}
std::size_t ReplicaExchangeOptions::frames() const { return production_exchanges() / exchanges_per_frame(); }

Json ReplicaExchangeOptions::to_json() const {
  return {{"temperatures", temperatures},
          {"timestep_fs", timestep_fs},
          {"friction_per_ps", friction_per_ps},
          {"exchange_interval_ps", exchange_interval_ps},
          {"equilibration_ps", equilibration_ps},
          {"production_ns", production_ps / 1000.0},
          {"frame_interval_ps", frame_interval_ps},
          {"minimize", minimize},
          {"swaps", swap_scheme_name(swaps)},
          {"seed", seed}};
}

std::vector<double> geometric_ladder(double t_min, double t_max, std::size_t n) {
  if (!(t_min > 0) || !std::isfinite(t_min)) {
    throw ConfigError("t_min: is " + format_number(t_min) + " K, but must be > 0");
  }
  if (!(t_max > t_min) || !std::isfinite(t_max)) {
    throw ConfigError("t_max: is " + format_number(t_max) + " K, but must be finite and above t_min (" +
                      format_number(t_min) + " K)");
  }
  if (n < 2) throw ConfigError("replicas: is " + std::to_string(n) + ", but a ladder needs at least 2");
  std::vector<double> t(n);
  const double ratio = t_max / t_min;
  for (std::size_t k = 0; k < n; ++k) {
    t[k] = t_min * std::pow(ratio, static_cast<double>(k) / static_cast<double>(n - 1));
  }
  t.front() = t_min;
  t.back() = t_max;
  return t;
}

namespace {

/// "temperatures", or "t_max" + "replicas" (+ "t_min") of a section, into `o`.
void read_ladder(JsonReader& r, ReplicaExchangeOptions& o) {
  const bool listed = r.has("temperatures");
  const bool ladder = r.has("t_max") || r.has("replicas") || r.has("t_min");
  if (listed && ladder) r.fail("temperatures", "give either temperatures or t_max with replicas, not both");
  if (listed) {
    o.temperatures = r.get_doubles("temperatures");
    return;
  }
  if (!ladder) return;
  if (!r.has("t_max")) r.fail("t_max", "missing (a geometric ladder needs t_max and replicas)");
  if (!r.has("replicas")) r.fail("replicas", "missing (a geometric ladder needs t_max and replicas)");
  const double fallback_min = o.temperatures.empty() ? 0.0 : o.temperatures.front();
  const double t_min = r.get_double("t_min", fallback_min);
  const double t_max = r.get_double("t_max");
  const long long n = r.get_int("replicas");
  if (n < 2) r.fail("replicas", "is " + std::to_string(n) + ", but a ladder needs at least 2");
  // Each replica is an OpenMM context: a file must not be able to ask for millions.
  constexpr long long kMaxReplicas = 1024;
  if (n > kMaxReplicas) r.fail("replicas", "is " + std::to_string(n) + ", but must be <= " + std::to_string(kMaxReplicas));
  try {
    o.temperatures = geometric_ladder(t_min, t_max, static_cast<std::size_t>(n));
  } catch (const ConfigError& e) {
    throw ConfigError(r.context() + "." + e.what());
  }
}

}  // namespace

ReplicaExchangeOptions replica_exchange_options_from_json(const Json& section, const std::string& context,
                                                          ReplicaExchangeOptions o) {
  if (section.is_null()) return o;
  if (!section.is_object()) throw ConfigError(context + ": expected an object, got " + section.dump());
  JsonReader r(section, context);
  read_ladder(r, o);
  o.timestep_fs = r.get_double("timestep_fs", o.timestep_fs);
  o.friction_per_ps = r.get_double("friction_per_ps", o.friction_per_ps);
  o.exchange_interval_ps = r.get_double("exchange_interval_ps", o.exchange_interval_ps);
  o.equilibration_ps = r.get_double("equilibration_ps", o.equilibration_ps);
  o.production_ps = 1000.0 * r.get_double("production_ns", o.production_ps / 1000.0);
  o.frame_interval_ps = r.get_double("frame_interval_ps", o.frame_interval_ps);
  o.minimize = r.get_bool("minimize", o.minimize);
  if (r.has("swaps")) o.swaps = parse_swap_scheme(r.get_string("swaps"), context + ".swaps");
  o.seed = read_seed(r, "seed", o.seed);
  r.finish();
  try {
    o.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(context + "." + e.what());
  }
  return o;
}

std::vector<double> ReplicaExchangeResult::neighbor_acceptance() const {
  std::vector<double> a;
  for (Eigen::Index k = 0; k + 1 < swap_attempts.rows(); ++k) {
    const double n = swap_attempts(k, k + 1);
    a.push_back(n > 0 ? swap_accepted(k, k + 1) / n : std::numeric_limits<double>::quiet_NaN());
  }
  return a;
}

std::vector<std::size_t> ReplicaExchangeState::replica_at_state() const {
  std::vector<std::size_t> at(state_of_replica.size());
  for (std::size_t r = 0; r < state_of_replica.size(); ++r) at[state_of_replica[r]] = r;
  return at;
}

namespace {

/// The fixed quantities of a run and the state it advances.
struct Engine {
  const OpenMMTarget& target;
  const ReplicaExchangeOptions& o;
  ReplicaExchangeState& st;
  std::vector<double> inv_mass;
  std::vector<double> kT;  ///< per temperature index (kJ/mol)
  double dt = 0.0;         ///< ps
  double dof = 0.0;        ///< kinetic degrees of freedom per replica
  std::size_t K = 0;
  std::size_t eq = 0;      ///< equilibration exchanges
  std::size_t total = 0;   ///< all exchanges
  mpi::Block mine;         ///< the replicas this rank advances (all of them on one rank)

  Engine(const OpenMMTarget& t, const ReplicaExchangeOptions& options, ReplicaExchangeState& state)
      : target(t), o(options), st(state), inv_mass(inverse_masses(t)), K(options.temperatures.size()) {
    for (double T : o.temperatures) kT.push_back(kBoltzmannKJPerMolK * T);
    dt = o.timestep_fs / 1000.0;
    eq = o.equilibration_exchanges();
    total = eq + o.production_exchanges();
    st.result.removes_com = removes_com_motion(t);
    dof = static_cast<double>(t.dim()) - (st.result.removes_com ? 3.0 : 0.0);
    mine = mpi::my_block(K);
  }

  double kinetic_temperature(const LangevinState& s) const {
    double ke = 0.0;
    for (std::size_t k = 0; k < s.v.size(); ++k)
      if (inv_mass[k] > 0) ke += 0.5 * s.v[k] * s.v[k] / inv_mass[k];
    return 2.0 * ke / (kBoltzmannKJPerMolK * dof);
  }
};

/// Sizes the recorded arrays of `st.result` for the whole production of `o`.
void allocate_records(ReplicaExchangeState& st, const ReplicaExchangeOptions& o, std::size_t dim) {
  const std::size_t K = o.temperatures.size();
  const auto frames = static_cast<Eigen::Index>(o.frames());
  ReplicaExchangeResult& r = st.result;
  r.temperatures = o.temperatures;
  r.frames.assign(K, RowMatrix(frames, static_cast<Eigen::Index>(dim)));
  r.potential_energies.assign(K, Eigen::VectorXd(frames));
  r.swap_attempts = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(K), static_cast<Eigen::Index>(K));
  r.swap_accepted = r.swap_attempts;
  r.round_trips.assign(K, 0);
  r.replica_states.resize(static_cast<Eigen::Index>(o.production_exchanges()), static_cast<Eigen::Index>(K));
  st.kinetic_temperature_sum.assign(K, 0.0);
}

/// The start configuration of every replica: `start`, minimized (optional), with its
/// forces. Returns "" or why it failed.
std::string start_configuration(Engine& e, const std::vector<double>& start, LangevinState& s0) {
  s0.x = start;
  if (!compute_forces(e.target, s0)) return "non-finite energy or forces at the start configuration";
  e.st.result.start_energy = s0.energy;
  if (e.o.minimize) {
    const std::string error = minimize_positions(e.target, s0.x, e.dt);
    if (!error.empty()) return "minimization failed: " + error;
  }
  if (!compute_forces(e.target, s0)) return "non-finite energy or forces after minimization";
  e.st.result.minimized_energy = s0.energy;
  return "";
}

/// A fresh run: minimized start, replica r at temperature r with velocities from its
/// stream. Rank 0 minimizes and hands every rank the result (one minimization, the
/// same start bits everywhere); each rank draws the velocities of its own replicas.
/// Returns "" or why the start failed.
std::string start_run(Engine& e, const std::vector<double>& start) {
  ReplicaExchangeState& st = e.st;
  LangevinState s0;
  std::string failure;
  if (mpi::is_root()) failure = start_configuration(e, start, s0);
  mpi::bcast(failure);
  if (!failure.empty()) return failure;
  // x, f, energy and the two reported energies, from rank 0.
  const std::size_t n = e.target.dim();
  std::vector<double> packed(2 * n + 3);
  if (mpi::is_root()) {
    std::copy(s0.x.begin(), s0.x.end(), packed.begin());
    std::copy(s0.f.begin(), s0.f.end(), packed.begin() + static_cast<std::ptrdiff_t>(n));
    packed[2 * n] = s0.energy;
    packed[2 * n + 1] = st.result.start_energy;
    packed[2 * n + 2] = st.result.minimized_energy;
  }
  mpi::bcast(packed.data(), packed.size());
  s0.x.assign(packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(n));
  s0.f.assign(packed.begin() + static_cast<std::ptrdiff_t>(n), packed.begin() + static_cast<std::ptrdiff_t>(2 * n));
  s0.v.assign(n, 0.0);
  s0.energy = packed[2 * n];
  st.result.start_energy = packed[2 * n + 1];
  st.result.minimized_energy = packed[2 * n + 2];
  st.replicas.assign(e.K, s0);
  st.streams.clear();
  for (std::size_t r = 0; r < e.K; ++r) st.streams.push_back(stream_for(e.o.seed, r));
  st.swap_stream = stream_for(e.o.seed, kSwapStream);
  st.state_of_replica.resize(e.K);
  st.trip_label.assign(e.K, 0);
  for (std::size_t r = 0; r < e.K; ++r) {
    st.state_of_replica[r] = r;
    st.trip_label[r] = r == 0 ? 1 : 0;
  }
  for (std::size_t r = e.mine.begin; r < e.mine.end; ++r) {
    draw_velocities(st.replicas[r], e.inv_mass, e.kT[r], st.streams[r], st.result.removes_com);
  }
  return "";
}

/// Advances every replica of this rank by one exchange interval at its current
/// temperature (in parallel over its replicas), then shares the energies and failures
/// of all replicas with every rank (the only data a swap needs: configurations never
/// move). Returns "" or the failure of the first failing replica; counts the failing
/// replicas.
std::string md_segment(Engine& e) {
  ReplicaExchangeState& st = e.st;
  const std::size_t steps = e.o.steps_per_exchange();
  const std::size_t first_step = st.result.exchanges_done * steps;
  // Per own replica: its energy and the step (counted from 1) it failed at, 0 if none.
  std::vector<double> mine(2 * e.mine.size(), 0.0);
  for_each_index(e.mine.size(), [&](std::size_t i) {
    const std::size_t r = e.mine.begin + i;
    const std::size_t k = st.state_of_replica[r];
    for (std::size_t s = 0; s < steps; ++s) {
      if (!langevin_middle_step(e.target, st.replicas[r], e.inv_mass, e.dt, e.o.friction_per_ps, e.kT[k],
                                st.streams[r], st.result.removes_com)) {
        mine[2 * i + 1] = static_cast<double>(first_step + s + 1);
        break;
      }
    }
    mine[2 * i] = st.replicas[r].energy;
  });
  const std::vector<double> all = mpi::allgatherv(mine);
  std::string first;
  for (std::size_t r = 0; r < e.K; ++r) {
    st.replicas[r].energy = all[2 * r];
    if (all[2 * r + 1] == 0.0) continue;
    ++st.result.non_finite_replicas;
    if (!first.empty()) continue;
    std::ostringstream msg;
    msg << "replica " << r << " at " << std::fixed << std::setprecision(2)
        << e.o.temperatures[st.state_of_replica[r]] << " K: non-finite energy or forces at step "
        << static_cast<std::size_t>(all[2 * r + 1]);
    first = msg.str();
  }
  return first;
}

/// Every replica of this rank as bytes: x, v, f, energy, then its stream's state.
std::string pack_replicas(const Engine& e, bool full) {
  std::string bytes;
  auto put = [&bytes](const void* p, std::size_t n) { bytes.append(static_cast<const char*>(p), n); };
  for (std::size_t r = e.mine.begin; r < e.mine.end; ++r) {
    const LangevinState& s = e.st.replicas[r];
    put(s.x.data(), s.x.size() * sizeof(double));
    put(&s.energy, sizeof(double));
    if (!full) continue;
    put(s.v.data(), s.v.size() * sizeof(double));
    put(s.f.data(), s.f.size() * sizeof(double));
    const Rng::State rs = e.st.streams[r].state();
    put(rs.words.data(), sizeof(rs.words));
    put(&rs.cached, sizeof(double));
    const char cached = rs.has_cached ? 1 : 0;
    put(&cached, 1);
  }
  return bytes;
}

/// Rank 0: the replicas of every rank from their bytes (pack_replicas, in rank order,
/// hence in replica order).
void unpack_replicas(Engine& e, const std::string& bytes, bool full) {
  std::size_t pos = 0;
  auto get = [&bytes, &pos](void* p, std::size_t n) {
    std::memcpy(p, bytes.data() + pos, n);
    pos += n;
  };
  for (std::size_t r = 0; r < e.K; ++r) {
    LangevinState& s = e.st.replicas[r];
    get(s.x.data(), s.x.size() * sizeof(double));
    get(&s.energy, sizeof(double));
    if (!full) continue;
    s.v.resize(s.x.size());
    get(s.v.data(), s.v.size() * sizeof(double));
    get(s.f.data(), s.f.size() * sizeof(double));
    Rng::State rs;
    get(rs.words.data(), sizeof(rs.words));
    get(&rs.cached, sizeof(double));
    char cached = 0;
    get(&cached, 1);
    rs.has_cached = cached != 0;
    e.st.streams[r].set_state(rs);
  }
}

/// Brings every replica's configuration (and, when `full`, velocities, forces and
/// stream) to rank 0, which alone records frames and writes checkpoints. Nothing to do
/// on one rank.
void gather_replicas(Engine& e, bool full) {
  if (mpi::size() == 1) return;
  const std::string bytes = mpi::gatherv(pack_replicas(e, full));
  if (mpi::is_root()) unpack_replicas(e, bytes, full);
}

/// Frame `st.frames_done` of every temperature: the configuration at it now (on rank
/// 0, which gathers the configurations and the owners' kinetic temperatures).
void record_frame(Engine& e) {
  ReplicaExchangeState& st = e.st;
  std::vector<double> kinetic;
  for (std::size_t r = e.mine.begin; r < e.mine.end; ++r) kinetic.push_back(e.kinetic_temperature(st.replicas[r]));
  gather_replicas(e, false);
  kinetic = mpi::allgatherv(kinetic);
  const auto row = static_cast<Eigen::Index>(st.frames_done);
  const std::vector<std::size_t> at = st.replica_at_state();
  for (std::size_t k = 0; k < e.K; ++k) {
    const LangevinState& s = st.replicas[at[k]];
    st.result.frames[k].row(row) = Eigen::Map<const Eigen::RowVectorXd>(s.x.data(), static_cast<Eigen::Index>(s.x.size()));
    st.result.potential_energies[k][row] = s.energy;
    st.kinetic_temperature_sum[k] += kinetic[at[k]];
  }
  ++st.frames_done;
}

/// One Metropolis attempt to swap the configurations at temperatures i and j
/// (replicas at[i], at[j]); updates `at`, the permutation, the velocities and, in
/// production, the counters.
void attempt_swap(Engine& e, std::vector<std::size_t>& at, std::size_t i, std::size_t j, bool production) {
  ReplicaExchangeState& st = e.st;
  const std::size_t a = at[i], b = at[j];
  // log of the acceptance ratio: (β_i − β_j)(E_a − E_b) (Sugita & Okamoto 1999).
  const double delta = (1.0 / e.kT[i] - 1.0 / e.kT[j]) * (st.replicas[a].energy - st.replicas[b].energy);
  const double u = st.swap_stream.uniform();  // drawn every time: the stream's use never depends on Δ
  const bool accept = delta >= 0 || u < std::exp(delta);
  const auto ii = static_cast<Eigen::Index>(i), jj = static_cast<Eigen::Index>(j);
  if (production) {
    st.result.swap_attempts(ii, jj) += 1;
    st.result.swap_attempts(jj, ii) += 1;
  }
  if (!accept) return;
  if (production) {
    st.result.swap_accepted(ii, jj) += 1;
    st.result.swap_accepted(jj, ii) += 1;
  }
  // Velocities follow the temperature: v ← v·sqrt(T_new/T_old).
  const double up = std::sqrt(e.o.temperatures[j] / e.o.temperatures[i]);
  for (double& v : st.replicas[a].v) v *= up;
  for (double& v : st.replicas[b].v) v /= up;
  st.state_of_replica[a] = j;
  st.state_of_replica[b] = i;
  std::swap(at[i], at[j]);
}

/// The swaps of exchange `exchange` (see SwapScheme), from the swap stream.
void swap_round(Engine& e, std::size_t exchange, bool production) {
  std::vector<std::size_t> at = e.st.replica_at_state();
  if (e.o.swaps == SwapScheme::kNeighbors) {
    for (std::size_t k = exchange % 2; k + 1 < e.K; k += 2) attempt_swap(e, at, k, k + 1, production);
    return;
  }
  const std::size_t attempts = e.K * e.K * e.K;
  const double K = static_cast<double>(e.K);
  for (std::size_t n = 0; n < attempts; ++n) {
    const auto i = std::min(e.K - 1, static_cast<std::size_t>(e.st.swap_stream.uniform() * K));
    auto j = std::min(e.K - 2, static_cast<std::size_t>(e.st.swap_stream.uniform() * (K - 1.0)));
    if (j >= i) ++j;
    attempt_swap(e, at, std::min(i, j), std::max(i, j), production);
  }
}

/// Round-trip labels after a swap round; completed T_0 → T_{K−1} → T_0 cycles count
/// in production.
void update_round_trips(Engine& e, bool production) {
  ReplicaExchangeState& st = e.st;
  for (std::size_t r = 0; r < e.K; ++r) {
    const std::size_t k = st.state_of_replica[r];
    if (k == 0) {
      if (st.trip_label[r] == 2 && production) ++st.result.round_trips[r];
      st.trip_label[r] = 1;
    } else if (k == e.K - 1 && st.trip_label[r] == 1) {
      st.trip_label[r] = 2;
    }
  }
}

std::string progress_status(const ReplicaExchangeResult& r) {
  std::ostringstream s;
  s << "acceptance";
  for (double a : r.neighbor_acceptance()) s << ' ' << std::fixed << std::setprecision(2) << a;
  std::size_t trips = 0;
  for (std::size_t t : r.round_trips) trips += t;
  s << ", round trips " << trips;
  return s.str();
}

/// Cuts the recorded arrays to what was recorded and fills the derived fields.
void finish_result(Engine& e) {
  ReplicaExchangeState& st = e.st;
  ReplicaExchangeResult& r = st.result;
  const auto f = static_cast<Eigen::Index>(st.frames_done);
  for (std::size_t k = 0; k < e.K; ++k) {
    r.frames[k].conservativeResize(f, r.frames[k].cols());
    r.potential_energies[k].conservativeResize(f);
  }
  r.replica_states.conservativeResize(static_cast<Eigen::Index>(st.production_done), r.replica_states.cols());
  r.mean_kinetic_temperature.assign(e.K, std::numeric_limits<double>::quiet_NaN());
  if (st.frames_done > 0) {
    for (std::size_t k = 0; k < e.K; ++k) {
      r.mean_kinetic_temperature[k] = st.kinetic_temperature_sum[k] / static_cast<double>(st.frames_done);
    }
  }
  r.md_steps = r.exchanges_done * r.steps_per_exchange;
  // Every rank returns the whole result (bg-sample trains on it on every rank); the
  // configurations were gathered on rank 0 only.
  for (std::size_t k = 0; k < e.K; ++k) mpi::bcast(r.frames[k].data(), static_cast<std::size_t>(r.frames[k].size()));
}

/// Checkpoint bookkeeping of one invocation.
struct CheckpointClock {
  const ReplicaExchangeCheckpointing* ck = nullptr;
  double last = 0.0;
  bool due(std::size_t exchanges_done, double now) const {
    if (!ck || ck->path.empty()) return false;
    if (ck->stop_after_exchanges > 0 && exchanges_done == ck->stop_after_exchanges) return true;
    if (ck->every_exchanges > 0 && exchanges_done % ck->every_exchanges == 0) return true;
    return ck->every_seconds > 0 && now - last >= ck->every_seconds;
  }
};

/// One exchange: MD, frame, swaps, round trips, history. Returns false on failure.
bool exchange_step(Engine& e) {
  ReplicaExchangeState& st = e.st;
  const std::size_t x = st.result.exchanges_done;
  const bool production = x >= e.eq;
  const double t0 = wall_seconds();
  const std::string failure = md_segment(e);
  st.result.md_seconds += wall_seconds() - t0;
  if (!failure.empty()) {
    st.result.failed = true;
    st.result.failure = failure;
    return false;
  }
  if (production && (x - e.eq + 1) % e.o.exchanges_per_frame() == 0) record_frame(e);
  swap_round(e, x, production);
  update_round_trips(e, production);
  if (production) {
    for (std::size_t r = 0; r < e.K; ++r) {
      st.result.replica_states(static_cast<Eigen::Index>(st.production_done), static_cast<Eigen::Index>(r)) =
          static_cast<double>(st.state_of_replica[r]);
    }
    ++st.production_done;
  }
  ++st.result.exchanges_done;
  return true;
}

/// The exchange loop from st.result.exchanges_done to the end (or the test stop).
void run_exchanges(Engine& e, const ReplicaExchangeCheckpointing* ck, double invocation_start) {
  ReplicaExchangeState& st = e.st;
  const double wall_before = st.result.wall_seconds;
  // Progress in MD steps per replica, so that its rate reads as steps/s of one replica.
  const std::size_t steps = e.o.steps_per_exchange();
  Progress progress("replica-exchange " + e.target.name(), e.total * steps, e.o.progress);
  CheckpointClock clock{ck, invocation_start};
  while (st.result.exchanges_done < e.total) {
    if (!exchange_step(e)) break;
    const double now = wall_seconds();
    st.result.wall_seconds = wall_before + (now - invocation_start);
    if (e.o.progress) progress.update(st.result.exchanges_done * steps, progress_status(st.result));
    // Rank 0's clock decides (wall time differs between ranks); every rank then sends
    // its replicas and rank 0 alone writes.
    const bool due = st.result.exchanges_done < e.total && clock.due(st.result.exchanges_done, now);
    if (mpi::bcast(due)) {
      gather_replicas(e, true);
      if (mpi::is_root()) write_replica_exchange_checkpoint(ck->path, st, e.o, e.target);
      ++st.result.checkpoints_written;
      clock.last = wall_seconds();
      if (ck->stop_after_exchanges == st.result.exchanges_done) {
        st.result.interrupted = true;
        break;
      }
    }
  }
  st.result.wall_seconds = wall_before + (wall_seconds() - invocation_start);
  progress.finish(st.result.failed ? "failed: " + st.result.failure : progress_status(st.result));
}

}  // namespace

ReplicaExchangeResult run_replica_exchange(const OpenMMTarget& target, const std::vector<double>& start,
                                           const ReplicaExchangeOptions& options,
                                           const ReplicaExchangeCheckpointing* checkpointing) {
  options.validate();
  if (start.size() != target.dim()) {
    throw DomainError("replica exchange: start configuration has " + std::to_string(start.size()) +
                      " coordinates, but " + target.name() + " has " + std::to_string(target.dim()));
  }
  const double t0 = wall_seconds();
  ReplicaExchangeState st;
  allocate_records(st, options, target.dim());
  Engine e(target, options, st);
  st.result.equilibration_exchanges = e.eq;
  st.result.steps_per_exchange = options.steps_per_exchange();
  const bool resume = checkpointing && checkpointing->resume;
  if (resume) {
    if (checkpointing->path.empty()) throw ConfigError("resume: no checkpoint path given");
    read_replica_exchange_checkpoint(checkpointing->path, st, options, target);
    st.result.resumed = true;
    st.result.resumed_at_exchange = st.result.exchanges_done;
  } else {
    const std::string failure = start_run(e, start);
    if (!failure.empty()) {
      st.result.failed = true;
      st.result.failure = failure;
      st.result.non_finite_replicas = e.K;
    } else {
      update_round_trips(e, false);
    }
  }
  if (!st.result.failed) run_exchanges(e, checkpointing, t0);
  finish_result(e);
  return std::move(st.result);
}

}  // namespace boltzlab
