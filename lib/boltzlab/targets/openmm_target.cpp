#include "boltzlab/targets/openmm_target.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include <OpenMM.h>
#include <tbb/enumerable_thread_specific.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/pdb.hpp"

namespace fs = std::filesystem;

namespace boltzlab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// OpenMM's CPU and OpenCL platforms are plugins; load them once per process.
void load_openmm_plugins() {
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      OpenMM::Platform::loadPluginsFromDirectory(OpenMM::Platform::getDefaultPluginsDirectory());
    } catch (const std::exception&) {
      // A plugin directory that cannot be read leaves the built-in Reference platform.
    }
  });
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string read_text(const fs::path& path, const std::string& field, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in || fs::is_directory(path)) throw IoError(field + ": cannot open " + what + " '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first element of an XML document (skipping the declaration and comments).
std::string root_element(const std::string& text) {
  std::size_t pos = 0;
  while (true) {
    pos = text.find('<', pos);
    if (pos == std::string::npos) return "";
    if (text.compare(pos, 2, "<?") == 0 || text.compare(pos, 4, "<!--") == 0 || text.compare(pos, 2, "<!") == 0) {
      pos = text.find('>', pos);
      if (pos == std::string::npos) return "";
      continue;
    }
    std::size_t end = pos + 1;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) && text[end] != '>' &&
           text[end] != '/')
      ++end;
    return text.substr(pos + 1, end - pos - 1);
  }
}

}  // namespace

std::vector<std::string> openmm_platform_names() {
  load_openmm_plugins();
  std::vector<std::string> names;
  for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); ++i) names.push_back(OpenMM::Platform::getPlatform(i).getName());
  return names;
}

OpenMMContextPolicy openmm_context_policy(const std::string& platform) {
  // GPU platforms: more Contexts would queue on the same device, each with its own copy of the System.
  if (platform == "OpenCL" || platform == "CUDA" || platform == "HIP") return OpenMMContextPolicy::kShared;
  return OpenMMContextPolicy::kPerThread;
}

std::string to_string(OpenMMContextPolicy policy) {
  return policy == OpenMMContextPolicy::kShared ? "shared" : "per_thread";
}

void OpenMMTargetOptions::validate() const {
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    throw ConfigError("temperature: is " + std::to_string(temperature) + " K, but must be > 0");
  }
  if (energy_cut && !std::isfinite(*energy_cut)) throw ConfigError("energy_cut: must be a finite number");
  if (energy_max && std::isnan(*energy_max)) throw ConfigError("energy_max: must be a number");
  if (system_xml.empty()) throw ConfigError("system: missing path of the OpenMM System XML");
  if (pdb.empty()) throw ConfigError("pdb: missing path of the PDB file");
}

OpenMMContext::OpenMMContext() = default;
OpenMMContext::~OpenMMContext() {
  context.reset();  // a Context refers to its System and Integrator: destroy it first
  integrator.reset();
  system.reset();
}
OpenMMContext::OpenMMContext(OpenMMContext&&) noexcept = default;
OpenMMContext& OpenMMContext::operator=(OpenMMContext&& other) noexcept {
  if (this != &other) {
    context.reset();
    integrator.reset();
    system.reset();
    system = std::move(other.system);
    integrator = std::move(other.integrator);
    context = std::move(other.context);
  }
  return *this;
}

/// Per-thread evaluation state: a Context and a reusable position buffer.
struct OpenMMTarget::ThreadState {
  OpenMMContext ctx;
  std::vector<OpenMM::Vec3> positions;
};

/// A Context to evaluate with; `lock` is held while the shared Context is in use.
struct OpenMMTarget::StateLease {
  std::unique_lock<std::mutex> lock;
  ThreadState* state = nullptr;
};

struct OpenMMTarget::Impl {
  OpenMM::Platform* platform = nullptr;
  std::map<std::string, std::string> properties;
  OpenMMContextPolicy policy = OpenMMContextPolicy::kPerThread;
  std::mutex create_mutex;  // Context creation is rare; serialize it to be safe
  std::atomic<std::size_t> contexts_created{0};  // of every make_context (MD included)
  std::atomic<std::size_t> evaluation_contexts{0};
  tbb::enumerable_thread_specific<std::unique_ptr<ThreadState>> states;  // kPerThread
  std::mutex shared_mutex;                                               // kShared: guards `shared`
  std::unique_ptr<ThreadState> shared;
};

namespace {

/// The System of options.system_xml (its text into `xml_text`). \throws IoError.
std::unique_ptr<OpenMM::System> load_system(const OpenMMTargetOptions& options, std::string& xml_text) {
  const std::string file = options.system_xml.string();
  xml_text = read_text(options.system_xml, "system", "OpenMM System XML");
  const std::string root = root_element(xml_text);
  if (root != "System") {
    throw IoError("system: '" + file + "' is not a serialized OpenMM System (root element '" + root + "')");
  }
  std::unique_ptr<OpenMM::System> system;
  try {
    std::istringstream in(xml_text);
    system.reset(OpenMM::XmlSerializer::deserialize<OpenMM::System>(in));
  } catch (const std::exception& e) {
    throw IoError("system: malformed OpenMM System XML '" + file + "': " + e.what());
  }
  if (!system) throw IoError("system: malformed OpenMM System XML '" + file + "'");
  if (system->getNumParticles() == 0) throw IoError("system: '" + file + "' has no particles");
  return system;
}

/// Topology and start positions (nm): the PDB, its coordinates replaced by
/// options.coordinates (.npy or AMBER inpcrd) when given. \throws IoError, ConfigError
/// (atom counts that disagree with the System's `atoms`).
PdbStructure load_structure(const OpenMMTargetOptions& options, std::size_t atoms) {
  PdbStructure pdb;
  try {
    pdb = read_pdb(options.pdb);
  } catch (const IoError& e) {
    throw IoError(std::string("pdb: ") + e.what());
  }
  if (pdb.topology.atoms() != atoms) {
    throw ConfigError("pdb: '" + options.pdb.string() + "' has " + std::to_string(pdb.topology.atoms()) +
                      " atoms, but the System '" + options.system_xml.string() + "' has " + std::to_string(atoms) +
                      " particles");
  }
  if (options.coordinates.empty()) return pdb;
  std::vector<double> x;
  try {
    x = options.coordinates.extension() == ".npy" ? read_npy(options.coordinates).data
                                                  : read_amber_coordinates(options.coordinates);
  } catch (const IoError& e) {
    throw IoError(std::string("coordinates: ") + e.what());
  }
  if (x.size() != 3 * atoms) {
    throw ConfigError("coordinates: '" + options.coordinates.string() + "' has " + std::to_string(x.size()) +
                      " numbers, but the System has " + std::to_string(atoms) + " particles (" +
                      std::to_string(3 * atoms) + " coordinates)");
  }
  pdb.positions_nm = std::move(x);
  return pdb;
}

/// Why the plugin of platform `name` did not load (": reason", first line), or "".
std::string plugin_failure(const std::string& name) {
  for (const std::string& failure : OpenMM::Platform::getPluginLoadFailures()) {
    if (failure.find("OpenMM" + name) == std::string::npos) continue;
    const std::string line = failure.substr(0, failure.find('\n'));
    return ": " + line;
  }
  return "";
}

/// The platform named `name`. \throws ConfigError naming the available ones (with a
/// "did you mean" suggestion, or why a GPU platform is missing).
OpenMM::Platform& find_platform(const std::string& name) {
  const auto names = openmm_platform_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return OpenMM::Platform::getPlatformByName(name);
  if (openmm_context_policy(name) == OpenMMContextPolicy::kShared) {  // a GPU platform
    throw ConfigError("platform: OpenMM platform '" + name +
                      "' is not available on this machine (no device or driver, or its plugin did not load from " +
                      OpenMM::Platform::getDefaultPluginsDirectory() + plugin_failure(name) + "); available: " + join(names));
  }
  std::string msg = "platform: unknown OpenMM platform '" + name + "'";
  const std::string guess = closest_key(name, names);
  if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
  throw ConfigError(msg + "; available: " + join(names));
}

/// options.platform_properties (CPU: "Threads" = 1 unless given, since the target runs
/// one Context per thread), each checked against the platform's property names.
std::map<std::string, std::string> platform_properties(const OpenMMTargetOptions& options,
                                                       const OpenMM::Platform& platform) {
  std::map<std::string, std::string> properties = options.platform_properties;
  if (options.platform == "CPU" && !properties.count("Threads")) properties["Threads"] = "1";
  const auto& allowed = platform.getPropertyNames();
  for (const auto& [key, value] : properties) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw ConfigError("platform_properties: '" + key + "' is not a property of platform " + options.platform +
                        "; known: " + join(allowed));
    }
  }
  return properties;
}

}  // namespace

OpenMMTarget::OpenMMTarget(OpenMMTargetOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  options_.validate();
  name_ = options_.system_xml.stem().string();
  system_ = load_system(options_, system_xml_text_);
  atoms_ = static_cast<std::size_t>(system_->getNumParticles());
  PdbStructure structure = load_structure(options_, atoms_);
  topology_ = std::move(structure.topology);
  initial_positions_ = std::move(structure.positions_nm);
  kT_ = kBoltzmannKJPerMolK * options_.temperature;
  impl_->platform = &find_platform(options_.platform);
  impl_->properties = platform_properties(options_, *impl_->platform);
  impl_->policy = options_.context_policy.value_or(openmm_context_policy(options_.platform));
  // Create the first evaluation Context now: it proves that the platform works.
  lease_state();
}

OpenMMTarget::~OpenMMTarget() = default;

OpenMMContext OpenMMTarget::make_context(std::unique_ptr<OpenMM::Integrator> integrator) const {
  std::lock_guard<std::mutex> lock(impl_->create_mutex);
  OpenMMContext c;
  try {
    c.system.reset(OpenMM::XmlSerializer::clone<OpenMM::System>(*system_));
    c.integrator = std::move(integrator);
    c.context = std::make_unique<OpenMM::Context>(*c.system, *c.integrator, *impl_->platform, impl_->properties);
  } catch (const std::exception& e) {
    throw BackendError("platform: OpenMM platform '" + options_.platform + "' cannot create a Context for '" +
                       options_.system_xml.string() + "': " + e.what());
  }
  impl_->contexts_created.fetch_add(1, std::memory_order_relaxed);
  return c;
}

std::unique_ptr<OpenMMTarget::ThreadState> OpenMMTarget::new_state() const {
  auto state = std::make_unique<ThreadState>();
  state->ctx = make_context(std::make_unique<OpenMM::VerletIntegrator>(0.001));
  state->positions.resize(atoms_);
  impl_->evaluation_contexts.fetch_add(1, std::memory_order_relaxed);
  return state;
}

OpenMMTarget::ThreadState& OpenMMTarget::local_state() const {
  auto& slot = impl_->states.local();
  if (!slot) slot = new_state();
  return *slot;
}

OpenMMTarget::StateLease OpenMMTarget::lease_state() const {
  if (impl_->policy == OpenMMContextPolicy::kPerThread) return StateLease{{}, &local_state()};
  std::unique_lock<std::mutex> lock(impl_->shared_mutex);
  if (!impl_->shared) impl_->shared = new_state();
  return StateLease{std::move(lock), impl_->shared.get()};
}

std::size_t OpenMMTarget::evaluation_contexts() const { return impl_->evaluation_contexts.load(); }

OpenMMContextPolicy OpenMMTarget::context_policy() const { return impl_->policy; }

double OpenMMTarget::potential_energy_with(ThreadState& state, const double* x, double* forces) const {
  for (std::size_t i = 0; i < atoms_; ++i) {
    const double a = x[3 * i], b = x[3 * i + 1], c = x[3 * i + 2];
    if (!std::isfinite(a) || !std::isfinite(b) || !std::isfinite(c)) return kNaN;  // OpenMM may throw or loop on NaN
    state.positions[i] = OpenMM::Vec3(a, b, c);
  }
  try {
    state.ctx.context->setPositions(state.positions);
    const OpenMM::State s =
        state.ctx.context->getState(forces ? OpenMM::State::Energy | OpenMM::State::Forces : OpenMM::State::Energy);
    if (forces) {
      const std::vector<OpenMM::Vec3>& f = s.getForces();
      for (std::size_t i = 0; i < atoms_; ++i) {
        forces[3 * i] = f[i][0];
        forces[3 * i + 1] = f[i][1];
        forces[3 * i + 2] = f[i][2];
      }
    }
    return s.getPotentialEnergy();
  } catch (const std::exception&) {
    openmm_errors_.fetch_add(1, std::memory_order_relaxed);
    return kNaN;
  }
}

double OpenMMTarget::potential_energy(const double* x, double* forces) const {
  const StateLease lease = lease_state();
  return potential_energy_with(*lease.state, x, forces);
}

double OpenMMTarget::reduced_energy_with(ThreadState& state, const double* x, double* grad) const {
  const double energy = potential_energy_with(state, x, grad);
  const std::size_t d = dim();
  double u = energy / kT_;
  bool finite = std::isfinite(u);
  if (grad && finite) {
    // ∇u = ∇E / kT = −F / kT (grad holds F here).
    const double scale = -1.0 / kT_;
    for (std::size_t k = 0; k < d; ++k) {
      grad[k] *= scale;
      finite = finite && std::isfinite(grad[k]);
    }
  }
  auto reject = [&](std::atomic<std::size_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
    if (grad) std::fill(grad, grad + d, 0.0);
    return kInf;
  };
  if (!finite) return reject(non_finite_);
  if (options_.energy_max && u > *options_.energy_max) return reject(above_max_);
  if (options_.energy_cut && u > *options_.energy_cut) {
    // ũ = c + log(1 + u − c), dũ/du = 1 / (1 + u − c).
    const double excess = 1.0 + u - *options_.energy_cut;
    cut_.fetch_add(1, std::memory_order_relaxed);
    if (grad)
      for (std::size_t k = 0; k < d; ++k) grad[k] /= excess;
    u = *options_.energy_cut + std::log(excess);
  }
  return u;
}

double OpenMMTarget::reduced_energy(const double* x, double* grad) const {
  const StateLease lease = lease_state();
  return reduced_energy_with(*lease.state, x, grad);
}

BatchStats OpenMMTarget::evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                                        Execution exec) const {
  const std::size_t n = prepare_batch(x, u, grad);
  const std::size_t d = dim();
  std::atomic<std::size_t> bad{0};
  // Blocks of up to 8 rows amortize the thread-local lookup; small batches get
  // smaller blocks so that every thread has work (rows are independent, so the
  // blocking never changes the results).
  const std::size_t per_thread = n / (4 * static_cast<std::size_t>(std::max(1, num_threads())));
  const std::size_t grain = std::clamp<std::size_t>(per_thread, 1, 8);
  // One shared Context evaluates one row at a time: workers would only wait for its lock.
  if (impl_->policy == OpenMMContextPolicy::kShared) exec = Execution::kSerial;
  for_each_block(
      n, grain,
      [&](std::size_t b, std::size_t e) {
        const StateLease lease = lease_state();
        ThreadState& state = *lease.state;
        std::size_t local_bad = 0;
        for (std::size_t i = b; i < e; ++i) {
          const auto row = static_cast<Eigen::Index>(i);
          double* g = grad ? grad->row(row).data() : nullptr;
          double value = reduced_energy_with(state, x.row(row).data(), g);
          if (!sanitize_energy(value, g, d)) ++local_bad;
          u[row] = value;
        }
        if (local_bad) bad.fetch_add(local_bad, std::memory_order_relaxed);
      },
      exec);
  return BatchStats{n, bad.load()};
}

OpenMMTarget::Counters OpenMMTarget::counters() const {
  return Counters{non_finite_.load(), openmm_errors_.load(), above_max_.load(), cut_.load()};
}

nlohmann::json OpenMMTarget::describe() const {
  nlohmann::json j;
  j["name"] = name_;
  j["type"] = "openmm";
  j["system"] = options_.system_xml.string();
  j["pdb"] = options_.pdb.string();
  if (!options_.coordinates.empty()) j["coordinates"] = options_.coordinates.string();
  j["atoms"] = atoms_;
  j["dim"] = dim();
  j["temperature_K"] = options_.temperature;
  j["kT_kJ_per_mol"] = kT_;
  j["platform"] = options_.platform;
  j["platform_properties"] = impl_->properties;
  j["contexts"] = to_string(impl_->policy);
  j["openmm_version"] = OpenMM::Platform::getOpenMMVersion();
  j["energy_cut"] = options_.energy_cut ? nlohmann::json(*options_.energy_cut) : nlohmann::json(nullptr);
  j["energy_max"] = options_.energy_max ? nlohmann::json(*options_.energy_max) : nlohmann::json(nullptr);
  nlohmann::json forces = nlohmann::json::array();
  for (int i = 0; i < system_->getNumForces(); ++i) forces.push_back(system_->getForce(i).getName());
  j["forces"] = forces;
  const Counters c = counters();
  j["counters"] = {{"non_finite", c.non_finite},
                   {"openmm_errors", c.openmm_errors},
                   {"above_energy_max", c.above_max},
                   {"energy_cut_applied", c.cut},
                   {"contexts_created", impl_->contexts_created.load()}};
  return j;
}

std::unique_ptr<Target> make_openmm(JsonReader& params, const fs::path& dir) {
  auto resolve = [&](const std::string& p) { return fs::path(p).is_absolute() ? fs::path(p) : dir / p; };
  OpenMMTargetOptions o;
  o.system_xml = resolve(params.get_string("system"));
  o.pdb = resolve(params.get_string("pdb"));
  if (params.has("coordinates")) o.coordinates = resolve(params.get_string("coordinates"));
  o.temperature = params.get_double("temperature");
  o.platform = params.get_string("platform", "Reference");
  if (params.has("platform_properties")) {
    const Json& props = params.get_json("platform_properties");
    if (!props.is_object()) params.fail("platform_properties", "expected an object of strings, got " + props.dump());
    for (const auto& [k, v] : props.items()) {
      if (!v.is_string()) params.fail("platform_properties", "value of '" + k + "' must be a string, got " + v.dump());
      o.platform_properties[k] = v.get<std::string>();
    }
  }
  if (params.has("energy_cut") && !params.get_json("energy_cut").is_null()) o.energy_cut = params.get_double("energy_cut");
  if (params.has("energy_max") && !params.get_json("energy_max").is_null()) o.energy_max = params.get_double("energy_max");
  params.finish();  // unknown keys are reported before any file is read
  // Errors from the target start with the field name ("pdb: ..."); prefix the file's context.
  const std::string where = params.context() + ".";
  try {
    return std::make_unique<OpenMMTarget>(std::move(o));
  } catch (const ConfigError& e) {
    throw ConfigError(where + e.what());
  } catch (const IoError& e) {
    throw IoError(where + e.what());
  } catch (const BackendError& e) {
    throw BackendError(where + e.what());
  }
}

}  // namespace boltzlab
