#include "boltzlab/generators/base_options.hpp"

#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {
namespace {

/// ConfigError "context.key: message", as JsonReader::fail words it.
[[noreturn]] void fail(const std::string& context, const char* key, const std::string& message) {
  throw ConfigError((context.empty() ? std::string(key) : context + "." + key) + ": " + message);
}

// One check per key (the messages of the generator section), shared by read (right after
// the key is read, so a file with several errors reports the first key's) and validate.
void check_components(int v, const std::string& c) {
  if (v < 1 || v > 8) fail(c, "base_components", "must be between 1 and 8");
}
void check_defensive(double v, const std::string& c) {
  if (!(v >= 0.0 && v < 0.5)) fail(c, "base_defensive", "must be in [0, 0.5)");
}
void check_harmonics(int v, const std::string& c) {
  if (v < 1 || v > 6) fail(c, "base_harmonics", "must be between 1 and 6");
}
void check_em_iterations(int v, const std::string& c) {
  if (v < 1 || v > 1000) fail(c, "base_em_iterations", "must be between 1 and 1000");
}
void check_shrinkage(double v, const std::string& c) {
  if (!(v >= 0.0 && v <= 1e6)) fail(c, "base_shrinkage", "must be in [0, 1e6]");
}
void check_joint_bins(int v, const std::string& c) {
  if (v != 0 && (v < 2 || v > 360)) fail(c, "base_joint_bins", "must be 0 (no correction) or between 2 and 360");
}
void check_joint_defensive(double v, const std::string& c) {
  if (!(v > 0.0 && v <= 1.0)) fail(c, "base_joint_defensive", "must be in (0, 1]");
}
void check_soft_threshold(double v, const std::string& c) {
  if (!(v > 0.0 && v <= 0.5)) fail(c, "base_soft_threshold", "must be in (0, 0.5] rad");
}

int read_int(JsonReader& r, const char* key) { return static_cast<int>(r.get_int(key)); }

Json kind_json(BaseKind kind) { return Json{{"base", base_kind_name(kind)}}; }

}  // namespace

const char* base_kind_name(BaseKind kind) {
  switch (kind) {
    case BaseKind::normal: return "normal";
    case BaseKind::gaussian_mixture: return "gaussian_mixture";
    case BaseKind::uniform: return "uniform";
    case BaseKind::von_mises: return "von_mises";
    case BaseKind::von_mises_mixture: return "von_mises_mixture";
    case BaseKind::conditional_gaussian: return "conditional_gaussian";
  }
  return "unknown";
}

template <BaseKind K>
void PlainBaseOptions<K>::read(JsonReader&) {}
template <BaseKind K>
void PlainBaseOptions<K>::validate(const std::string&) const {}
template <BaseKind K>
Json PlainBaseOptions<K>::to_json() const {
  return kind_json(kind);
}

template <BaseKind K>
void MixtureBaseOptions<K>::read(JsonReader& r) {
  if (r.has("base_components")) check_components(components = read_int(r, "base_components"), r.context());
  if (r.has("base_defensive")) check_defensive(defensive = r.get_double("base_defensive"), r.context());
}
template <BaseKind K>
void MixtureBaseOptions<K>::validate(const std::string& context) const {
  check_components(components, context);
  check_defensive(defensive, context);
}
template <BaseKind K>
Json MixtureBaseOptions<K>::to_json() const {
  Json j = kind_json(kind);
  j["base_components"] = components;
  j["base_defensive"] = defensive;
  return j;
}

template struct PlainBaseOptions<BaseKind::normal>;
template struct PlainBaseOptions<BaseKind::uniform>;
template struct PlainBaseOptions<BaseKind::von_mises>;
template struct MixtureBaseOptions<BaseKind::gaussian_mixture>;
template struct MixtureBaseOptions<BaseKind::von_mises_mixture>;

void ConditionalBaseOptions::read(JsonReader& r) {
  const std::string& c = r.context();
  if (r.has("base_components")) check_components(components = read_int(r, "base_components"), c);
  if (r.has("base_harmonics")) check_harmonics(harmonics = read_int(r, "base_harmonics"), c);
  if (r.has("base_experts")) experts = r.get_bool("base_experts");
  if (r.has("base_em_iterations")) {
    if (!experts) r.fail("base_em_iterations", "is only used with \"base_experts\": true");
    check_em_iterations(em_iterations = read_int(r, "base_em_iterations"), c);
  }
  if (r.has("base_shrinkage")) {
    if (!experts) r.fail("base_shrinkage", "is only used with \"base_experts\": true");
    check_shrinkage(shrinkage = r.get_double("base_shrinkage"), c);
  }
  if (r.has("base_joint_bins")) check_joint_bins(joint_bins = read_int(r, "base_joint_bins"), c);
  if (r.has("base_joint_defensive")) {
    if (joint_bins == 0) r.fail("base_joint_defensive", "is only used with \"base_joint_bins\" > 0");
    check_joint_defensive(joint_defensive = r.get_double("base_joint_defensive"), c);
  }
  if (r.has("base_soft_threshold")) check_soft_threshold(soft_threshold = r.get_double("base_soft_threshold"), c);
}

void ConditionalBaseOptions::validate(const std::string& context) const {
  check_components(components, context);
  check_harmonics(harmonics, context);
  check_em_iterations(em_iterations, context);
  check_shrinkage(shrinkage, context);
  check_joint_bins(joint_bins, context);
  check_joint_defensive(joint_defensive, context);
  check_soft_threshold(soft_threshold, context);
}

Json ConditionalBaseOptions::to_json() const {
  Json j = kind_json(kind);
  j["base_components"] = components;
  j["base_harmonics"] = harmonics;
  j["base_experts"] = experts;
  if (experts) {  // the reader refuses these keys without experts
    j["base_em_iterations"] = em_iterations;
    j["base_shrinkage"] = shrinkage;
  }
  j["base_soft_threshold"] = soft_threshold;
  j["base_joint_bins"] = joint_bins;
  if (joint_bins > 0) j["base_joint_defensive"] = joint_defensive;
  return j;
}

BaseKind kind_of(const BaseOptions& options) {
  return std::visit([](const auto& o) { return o.kind; }, options);
}

BaseOptions default_base_options(BaseKind kind) {
  switch (kind) {
    case BaseKind::normal: return NormalBaseOptions{};
    case BaseKind::gaussian_mixture: return GaussianMixtureBaseOptions{};
    case BaseKind::uniform: return UniformBaseOptions{};
    case BaseKind::von_mises: return VonMisesBaseOptions{};
    case BaseKind::von_mises_mixture: return VonMisesMixtureBaseOptions{};
    case BaseKind::conditional_gaussian: return ConditionalBaseOptions{};
  }
  return NormalBaseOptions{};
}

void validate(const BaseOptions& options, const std::string& context) {
  std::visit([&](const auto& o) { o.validate(context); }, options);
}

Json to_json(const BaseOptions& options) {
  return std::visit([](const auto& o) { return o.to_json(); }, options);
}

}  // namespace boltzlab::generators
