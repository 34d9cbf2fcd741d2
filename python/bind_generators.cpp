// Boltzmann generators from Python (LibTorch builds): load a trained model, sample with
// exact log q, evaluate log q, train one on any Target, or run bg-sample's whole job.
#ifdef BOLTZLAB_PY_WITH_TORCH
#include <optional>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "boltzlab/app/bg_config.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/score_generator.hpp"
#include "boltzlab/generators/trainer.hpp"

namespace boltzlab::python {

namespace gen = boltzlab::generators;

namespace {

/// A loaded or trained generator: an OT-flow (BoltzmannGenerator) or a score model.
struct Generator {
  std::optional<gen::BoltzmannGenerator> flow;
  std::optional<gen::ScoreGenerator> score;
  nlohmann::json metadata;
  int dim() const { return score ? score->dim() : flow->dim(); }
};

Generator load_generator(const std::string& path) {
  Generator g;
  py::gil_scoped_release release;
  if (gen::ScoreGenerator::is_score_model(path)) {
    gen::verify_model_bytes(path, gen::read_model_bytes(path));
    g.score.emplace(gen::ScoreGenerator::load(path, &g.metadata));
  } else {
    g.flow.emplace(gen::BoltzmannGenerator::load(path, &g.metadata));
  }
  return g;
}

py::tuple sample(Generator& g, long long n, std::uint64_t seed) {
  if (n < 1) throw ConfigError("samples is " + std::to_string(n) + ", but must be >= 1");
  gen::GeneratedSamples s;
  {
    py::gil_scoped_release release;
    s = g.score ? g.score->sample(n, seed) : g.flow->sample(n, seed);
  }
  return py::make_tuple(from_matrix(s.x), from_vector(s.log_q));
}

py::array_t<double> log_q(Generator& g, const DoubleArray& x) {
  const RowMatrix m = to_matrix(x, static_cast<std::size_t>(g.dim()), "x");
  Eigen::VectorXd lq;
  {
    py::gil_scoped_release release;
    lq = g.score ? g.score->log_q(m) : g.flow->log_q(m);
  }
  return from_vector(lq);
}

/// An OT-flow generator trained on `target` with the architecture and training keys of a
/// bg-sample "generator" section (read_model_options, TrainOptions::read: the same
/// validation and messages), on `data` when given (standardized from it), else by the
/// reverse KL only — the path that accepts a PythonTarget.
py::tuple train_generator(const TargetPtr& target, const py::object& options, const py::object& data,
                          std::uint64_t seed, bool progress) {
  const nlohmann::json section = to_json(options, "generator");
  JsonReader r(section, "generator");
  gen::GeneratorOptions model_options = gen::read_model_options(r, *target);
  const bool have_data = !data.is_none();
  gen::TrainOptions train_options;
  train_options.read(r, have_data);
  r.finish();
  model_options.validate();
  train_options.seed = seed;
  train_options.progress = progress;
  train_options.validate(have_data);
  RowMatrix x;
  if (have_data) x = to_matrix(data.cast<DoubleArray>(), target->dim(), "data");
  Generator g;
  gen::TrainHistory history;
  {
    py::gil_scoped_release release;
    g.flow.emplace(model_options, seed);
    if (have_data) g.flow->standardize_from_data(x);
    history = gen::train(*g.flow, *target, have_data ? &x : nullptr, train_options);
  }
  return py::make_tuple(std::move(g), from_json(history.to_json()));
}

/// bg-sample's whole job (run_bg_sample): train or load, sample, write the run directory.
py::object bg_sample(const std::string& potential, const std::string& out, const std::string& model,
                     std::optional<long long> samples, std::optional<int> iterations, std::uint64_t seed, int threads,
                     bool progress) {
  gen::BgSampleOptions o;
  o.potential = potential;
  o.out = out;
  o.model = model;
  o.samples = samples;
  o.iterations = iterations;
  o.seed = seed;
  o.threads = threads;
  o.progress = progress;
  o.validate();
  nlohmann::json summary;
  {
    py::gil_scoped_release release;
    gen::set_generator_threads(threads);
    summary = gen::run_bg_sample(o);
  }
  return from_json(summary);
}

}  // namespace

void bind_generators(py::module_& m) {
  py::class_<Generator>(m, "Generator", "A trained Boltzmann generator (OT-flow or score model).")
      .def_static("load", &load_generator, py::arg("path"),
                  "Loads model.pt (verified against its record model.json, as bg-sample --model).")
      .def_property_readonly("dim", &Generator::dim)
      .def_property_readonly("kind", [](const Generator& g) { return g.score ? "score" : "ot-flow"; })
      .def_property_readonly("metadata", [](const Generator& g) { return from_json(g.metadata); })
      .def("sample", &sample, py::arg("n"), py::arg("seed") = 1,
           "n samples and their exact log q (rows on base streams (seed, i))")
      .def("log_q", &log_q, py::arg("x"), "log q of the rows of x")
      .def(
          "save",
          [](const Generator& g, const std::string& path) {
            if (!g.flow) throw ConfigError("save: only OT-flow generators are saved from Python");
            g.flow->save(path, g.metadata);
          },
          py::arg("path"), "saves model.pt and its record model.json");
  m.def("train_generator", &train_generator, py::arg("target"), py::arg("options") = py::none(),
        py::arg("data") = py::none(), py::arg("seed") = 1, py::arg("progress") = false,
        "Trains an OT-flow generator on any Target (a PythonTarget too); returns (Generator, history).");
  m.def("bg_sample", &bg_sample, py::arg("potential"), py::arg("out"), py::arg("model") = "",
        py::arg("samples") = py::none(), py::arg("iterations") = py::none(), py::arg("seed") = 1,
        py::arg("threads") = 0, py::arg("progress") = false,
        "bg-sample's job: train (or load `model`), sample, write the run directory `out`; returns summary.json.");
}

}  // namespace boltzlab::python
#endif
