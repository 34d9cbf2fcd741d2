#include "boltzlab/generators/score_generator.hpp"

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/target_bridge.hpp"

namespace boltzlab::generators {

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

const char* sampler_name(ScoreSampler s) {
  return s == ScoreSampler::kProbabilityFlow ? "probability_flow" : "reverse_sde";
}

ScoreSampler parse_sampler(const std::string& name, const std::string& where) {
  if (name == "probability_flow") return ScoreSampler::kProbabilityFlow;
  if (name == "reverse_sde") return ScoreSampler::kReverseSde;
  throw ConfigError(where + " is '" + name + "', but must be \"probability_flow\" or \"reverse_sde\"");
}

std::unique_ptr<ScoreField> make_field(const ScoreGeneratorOptions& o, std::uint64_t seed) {
  if (o.model == "mlp") return std::make_unique<MlpScore>(o.mlp, seed);
  return std::make_unique<PotentialScore>(o.potential, seed);
}

torch::Tensor vector_tensor(const Eigen::VectorXd& v) {
  return torch::from_blob(const_cast<double*>(v.data()), {v.size()}, kF64).clone();
}

Eigen::VectorXd tensor_vector(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return Eigen::Map<const Eigen::VectorXd>(c.data_ptr<double>(), c.numel());
}

}  // namespace

void ScoreGeneratorOptions::read(JsonReader& r, int dim) {
  model = r.get_string("model", model);
  if (model != "mlp" && model != "potential")
    r.fail("model", "is '" + model + "', but must be \"mlp\" or \"potential\"");
  mlp.dim = dim;
  potential.dim = dim;
  if (r.has("hidden")) {
    const auto& h = r.get_json("hidden");
    if (!h.is_array()) r.fail("hidden", "must be an array of layer widths");
    mlp.hidden.clear();
    for (const auto& w : h) {
      if (!w.is_number_integer()) r.fail("hidden", "must be an array of integer layer widths");
      mlp.hidden.push_back(w.get<int>());
    }
  }
  potential.width = static_cast<int>(r.get_int("width", potential.width));
  potential.layers = static_cast<int>(r.get_int("layers", potential.layers));
  noising.read(r);
  if (r.has("sampler")) sampler = parse_sampler(r.get_string("sampler"), r.context_of("sampler"));
  flow_steps = static_cast<int>(r.get_int("flow_steps", flow_steps));
  reverse.steps = static_cast<int>(r.get_int("sde_steps", reverse.steps));
  reverse.corrector_steps = static_cast<int>(r.get_int("corrector_steps", reverse.corrector_steps));
  reverse.snr = r.get_double("snr", reverse.snr);
}

void ScoreGeneratorOptions::validate() const {
  if (model != "mlp" && model != "potential") throw ConfigError("generator.score.model must be mlp or potential");
  if (model == "mlp") mlp.validate();
  else potential.validate();
  noising.validate();
  if (flow_steps < 1) throw ConfigError("generator.score.flow_steps must be >= 1");
  reverse.validate();
}

nlohmann::json ScoreGeneratorOptions::to_json() const {
  nlohmann::json j = {{"model", model},
                      {"noising", noising.to_json()},
                      {"sampler", sampler_name(sampler)},
                      {"flow_steps", flow_steps},
                      {"sde_steps", reverse.steps},
                      {"corrector_steps", reverse.corrector_steps},
                      {"snr", reverse.snr}};
  if (model == "mlp") j["mlp"] = mlp.to_json();
  else j["potential"] = potential.to_json();
  return j;
}

ScoreGeneratorOptions ScoreGeneratorOptions::from_json(const nlohmann::json& j) {
  ScoreGeneratorOptions o;
  o.model = j.at("model").get<std::string>();
  if (o.model == "mlp") o.mlp = MlpScoreOptions::from_json(j.at("mlp"));
  else o.potential = OtPotentialOptions::from_json(j.at("potential"));
  o.noising = NoisingOptions::from_json(j.at("noising"));
  o.sampler = parse_sampler(j.at("sampler").get<std::string>(), "sampler");
  o.flow_steps = j.at("flow_steps").get<int>();
  o.reverse.steps = j.at("sde_steps").get<int>();
  o.reverse.corrector_steps = j.at("corrector_steps").get<int>();
  o.reverse.snr = j.at("snr").get<double>();
  o.validate();
  return o;
}

ScoreGenerator::ScoreGenerator(const ScoreGeneratorOptions& options, std::uint64_t seed)
    : options_(options), sde_(options.noising) {
  options_.validate();
  field_ = make_field(options_, seed);
  shift_ = Eigen::VectorXd::Zero(dim());
  scale_ = Eigen::VectorXd::Ones(dim());
}

void ScoreGenerator::standardize_from_data(const RowMatrix& data) {
  if (data.rows() < 2 || data.cols() != dim()) throw DomainError("score generator: data must be N×d with N ≥ 2");
  shift_ = data.colwise().mean().transpose();
  for (int k = 0; k < dim(); ++k) {
    const double var = (data.col(k).array() - shift_[k]).square().sum() / static_cast<double>(data.rows() - 1);
    scale_[k] = std::max(std::sqrt(var), 1e-12);
  }
}

RowMatrix ScoreGenerator::to_model_space(const RowMatrix& x) const {
  return ((x.rowwise() - shift_.transpose()).array().rowwise() / scale_.transpose().array()).matrix();
}

RowMatrix ScoreGenerator::from_model_space(const RowMatrix& y) const {
  return ((y.array().rowwise() * scale_.transpose().array()).rowwise() + shift_.transpose().array()).matrix();
}

ScoreTrainHistory ScoreGenerator::train(const RowMatrix& data, const ScoreTrainOptions& options) {
  if (data.cols() != dim()) throw DomainError("score generator: data of the wrong width");
  return train_score(*field_, sde_, to_model_space(data), options);
}

GeneratedSamples ScoreGenerator::sample(std::int64_t n, std::uint64_t seed) {
  ScoreSamples s = sample_probability_flow(*field_, sde_, n, seed, options_.flow_steps);
  const double log_scale = scale_.array().log().sum();
  return {from_model_space(s.x), s.log_q.array() - log_scale};
}

RowMatrix ScoreGenerator::sample_reverse_sde(std::int64_t n, std::uint64_t seed) {
  return from_model_space(generators::sample_reverse_sde(*field_, sde_, n, seed, options_.reverse));
}

Eigen::VectorXd ScoreGenerator::log_q(const RowMatrix& x) {
  if (x.cols() != dim()) throw DomainError("score generator: points of the wrong width");
  const Eigen::VectorXd lq = probability_flow_log_q(*field_, sde_, to_model_space(x), options_.flow_steps);
  return lq.array() - scale_.array().log().sum();
}

void ScoreGenerator::save(const std::filesystem::path& path, const nlohmann::json& metadata,
                          const std::optional<PotentialIdentity>& potential) const {
  save_model_archive(
      path,
      [this](torch::serialize::OutputArchive& archive) {
        archive.write("score_format_version", c10::IValue(static_cast<int64_t>(kScoreModelFormatVersion)));
        archive.write("options", c10::IValue(options_.to_json().dump()));
        archive.write("shift", vector_tensor(shift_));
        archive.write("scale", vector_tensor(scale_));
        torch::serialize::OutputArchive params;
        field_->write(params);
        archive.write("field", params);
      },
      metadata, potential);
}

bool ScoreGenerator::is_score_model(const std::filesystem::path& path) {
  return model_archive_has(path, "score_format_version");
}

ScoreGenerator ScoreGenerator::load(const std::filesystem::path& path, nlohmann::json* metadata) {
  std::optional<ScoreGenerator> g;
  const nlohmann::json meta = load_model_archive(
      path, "score_format_version", kScoreModelFormatVersion, "score model",
      [&g](torch::serialize::InputArchive& archive) {
        g.emplace(ScoreGeneratorOptions::from_json(nlohmann::json::parse(read_archive_string(archive, "options"))), 0);
        torch::Tensor shift, scale;
        archive.read("shift", shift);
        archive.read("scale", scale);
        if (shift.numel() != g->dim() || scale.numel() != g->dim()) throw ConfigError("shift/scale of the wrong size");
        g->shift_ = tensor_vector(shift);
        g->scale_ = tensor_vector(scale);
        torch::serialize::InputArchive params;
        archive.read("field", params);
        g->field_->read(params);
      });
  if (metadata) *metadata = meta;
  return std::move(*g);
}

}  // namespace boltzlab::generators
