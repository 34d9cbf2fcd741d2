#include "boltzlab/generators/base_registry.hpp"

#include <algorithm>
#include <set>

#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {
namespace {

template <class Options>
BaseOptions read_kind(JsonReader& r) {
  Options o;
  o.read(r);
  return o;
}

std::optional<BaseDensity> fit_normal(const BaseOptions&, const BaseFitData&) { return std::nullopt; }

std::optional<BaseDensity> fit_gaussian_mixture(const BaseOptions& options, const BaseFitData& d) {
  const auto& o = std::get<GaussianMixtureBaseOptions>(options);
  return BaseDensity::fit_mixture(d.y, d.torsion_mask, 1, o.components, 1e3, o.defensive);
}

std::optional<BaseDensity> fit_uniform(const BaseOptions&, const BaseFitData& d) {
  return BaseDensity(d.torsion_mask);
}

std::optional<BaseDensity> fit_von_mises(const BaseOptions&, const BaseFitData& d) {
  return BaseDensity::fit_von_mises(d.y, d.torsion_mask);
}

std::optional<BaseDensity> fit_von_mises_mixture(const BaseOptions& options, const BaseFitData& d) {
  const auto& o = std::get<VonMisesMixtureBaseOptions>(options);
  return BaseDensity::fit_mixture(d.y, d.torsion_mask, o.components, 1, 1e3, o.defensive);
}

/// Soft torsions: the joint group and every torsion wider than the threshold (e.g. the methyl
/// rotors); all other coordinates Gaussian given them (conditional_base.hpp).
std::optional<BaseDensity> fit_conditional_gaussian(const BaseOptions& options, const BaseFitData& d) {
  const auto& o = std::get<ConditionalBaseOptions>(options);
  const auto soft = BaseDensity::wide_torsions(d.y, d.torsion_mask, o.soft_threshold, d.joint);
  return BaseDensity::fit_conditional(d.y, d.torsion_mask, soft, d.joint, o);
}

const std::vector<std::string> kMixtureKeys = {"base_components", "base_defensive"};
const std::vector<std::string> kConditionalKeys = {
    "base_components", "base_harmonics",       "base_experts",       "base_em_iterations",
    "base_shrinkage",  "base_joint_bins",      "base_joint_defensive", "base_soft_threshold"};

/// Keys that depend on another key of their kind: the message when that kind is not chosen
/// (the same as the kind's reader gives when the other key does not enable them).
const char* dependency_message(const std::string& key) {
  if (key == "base_em_iterations" || key == "base_shrinkage") return "is only used with \"base_experts\": true";
  if (key == "base_joint_defensive") return "is only used with \"base_joint_bins\" > 0";
  return nullptr;
}

/// "\"a\", \"b\" or \"c\"".
std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += "\"" + names[i] + "\"";
  }
  return out;
}

/// Every base key, in the order of the rows (the order keys are checked in).
std::vector<std::string> all_base_keys() {
  std::vector<std::string> out;
  for (const auto& spec : base_kinds())
    for (const auto& k : spec.keys)
      if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  return out;
}

/// The kind named by "base" (or the default), refused unless it applies to `target`.
const BaseKindSpec& read_kind_name(JsonReader& r, const BaseTarget& target) {
  if (!r.has("base")) return base_kind_spec(default_base_kind(target));
  const std::string name = r.get_string("base");
  std::vector<std::string> allowed;
  for (const auto& s : base_kinds())
    if (s.molecular == target.molecular) allowed.push_back(s.name);
  const BaseKindSpec* spec = find_base_kind(name);
  if (spec == nullptr || spec->molecular != target.molecular)
    r.fail("base", "must be " + quoted_list(allowed) + (target.molecular ? " for a molecular target" : " for this target"));
  if (!target.molecular && target.particle_system && !spec->particle_systems)
    r.fail("base", "\"" + name + "\" is not available for particle systems");
  return *spec;
}

}  // namespace

const std::vector<BaseKindSpec>& base_kinds() {
  // Molecules first, then the other targets: the order of the kinds in messages.
  static const std::vector<BaseKindSpec> rows = {
      {BaseKind::von_mises, "von_mises", true, false, true, {}, read_kind<VonMisesBaseOptions>, fit_von_mises},
      {BaseKind::von_mises_mixture, "von_mises_mixture", true, false, true, kMixtureKeys,
       read_kind<VonMisesMixtureBaseOptions>, fit_von_mises_mixture},
      {BaseKind::conditional_gaussian, "conditional_gaussian", true, false, true, kConditionalKeys,
       read_kind<ConditionalBaseOptions>, fit_conditional_gaussian},
      {BaseKind::uniform, "uniform", true, false, false, {}, read_kind<UniformBaseOptions>, fit_uniform},
      {BaseKind::normal, "normal", false, true, false, {}, read_kind<NormalBaseOptions>, fit_normal},
      {BaseKind::gaussian_mixture, "gaussian_mixture", false, false, true, kMixtureKeys,
       read_kind<GaussianMixtureBaseOptions>, fit_gaussian_mixture},
  };
  return rows;
}

const BaseKindSpec& base_kind_spec(BaseKind kind) {
  for (const auto& s : base_kinds())
    if (s.kind == kind) return s;
  throw DomainError("base density: kind without a registry row");
}

const BaseKindSpec* find_base_kind(const std::string& name) {
  for (const auto& s : base_kinds())
    if (name == s.name) return &s;
  return nullptr;
}

BaseKind default_base_kind(const BaseTarget& target) {
  return target.molecular ? BaseKind::von_mises : BaseKind::normal;
}

BaseOptions read_base_options(JsonReader& r, const BaseTarget& target) {
  const BaseKindSpec& spec = read_kind_name(r, target);
  for (const auto& key : all_base_keys()) {
    if (!r.has(key)) continue;  // has(): a known key either way
    if (std::find(spec.keys.begin(), spec.keys.end(), key) != spec.keys.end()) continue;
    if (const char* m = dependency_message(key)) r.fail(key, m);
    std::vector<std::string> users;
    for (const auto& s : base_kinds())
      if (std::find(s.keys.begin(), s.keys.end(), key) != s.keys.end()) users.push_back(s.name);
    r.fail(key, "is only used with \"base\": " + quoted_list(users));
  }
  return spec.read(r);
}

std::optional<BaseDensity> fit_base(const BaseOptions& options, const BaseFitData& data) {
  const BaseKindSpec& spec = base_kind_spec(kind_of(options));
  if (spec.needs_data && !data.y.defined())
    throw DomainError(std::string("base density: \"") + spec.name + "\" is fitted to data, but none were given");
  return spec.fit(options, data);
}

}  // namespace boltzlab::generators
