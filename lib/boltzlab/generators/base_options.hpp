#pragma once
/// \file base_options.hpp
/// Options of a generator's base density ρ₀, one typed struct per kind, read from the keys of
/// a potential file's "generator" section:
///
///   "base"                  the kind: "normal", "gaussian_mixture" (other targets), "von_mises",
///                           "von_mises_mixture", "conditional_gaussian", "uniform" (molecules)
///   "base_components"       mixtures: most components per column (chosen by BIC), 1 … 8
///   "base_defensive"        von_mises_mixture / gaussian_mixture: weight of one broad
///                           defensive component per column, [0, 0.5)
///   "base_harmonics", "base_experts", "base_em_iterations", "base_shrinkage",
///   "base_soft_threshold", "base_joint_bins", "base_joint_defensive": conditional_gaussian
///                           (ConditionalBaseOptions)
///
/// Each struct has only the fields its kind uses, read(JsonReader&) (its own keys, each checked
/// as it is read; a key that depends on another of its keys, e.g. "base_em_iterations" on
/// "base_experts", is refused there unless enabled), validate(context) (ConfigError "context.base_<key>: ...",
/// with context e.g. "potentials/x.json: generator") and to_json() (the generator-section
/// keys of the kind, "base" included, so that read(to_json()) gives the options back).
/// The kinds' registry (names, the targets each applies to, readers, fitters) is
/// base_registry.hpp; this header needs no LibTorch.
#include <string>
#include <variant>

#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

/// The kinds of base density.
enum class BaseKind { normal, gaussian_mixture, uniform, von_mises, von_mises_mixture, conditional_gaussian };

/// "normal", "gaussian_mixture", … (the value of generator.base).
const char* base_kind_name(BaseKind kind);

/// Options of a kind without settings of its own.
template <BaseKind K>
struct PlainBaseOptions {
  static constexpr BaseKind kind = K;
  void read(JsonReader& r);
  void validate(const std::string& context = "generator") const;
  Json to_json() const;
};

/// Options of a per-column mixture.
template <BaseKind K>
struct MixtureBaseOptions {
  static constexpr BaseKind kind = K;
  int components = 4;      ///< base_components: most components per column (BIC), 1 … 8
  double defensive = 0.0;  ///< base_defensive: weight of one broad component per column, [0, 0.5)
  void read(JsonReader& r);
  void validate(const std::string& context = "generator") const;
  Json to_json() const;
};

/// N(0, I) in the flow space (after standardization): targets other than molecules.
using NormalBaseOptions = PlainBaseOptions<BaseKind::normal>;
/// Per-coordinate one-dimensional Gaussian mixtures fitted to the standardized data
/// (BaseDensity::fit_mixture; the defensive component is N(mean, (2 sd)²)): targets other than
/// molecules and particle systems.
using GaussianMixtureBaseOptions = MixtureBaseOptions<BaseKind::gaussian_mixture>;
/// Molecules: the uniform density on the torsions (standard normal on bonds and angles).
using UniformBaseOptions = PlainBaseOptions<BaseKind::uniform>;
/// Molecules: one von Mises per torsion fitted to the data (BaseDensity::fit_von_mises).
using VonMisesBaseOptions = PlainBaseOptions<BaseKind::von_mises>;
/// Molecules: a mixture of von Mises densities per torsion (EM, K by BIC; the defensive
/// component is the uniform density; BaseDensity::fit_mixture).
using VonMisesMixtureBaseOptions = MixtureBaseOptions<BaseKind::von_mises_mixture>;

/// Molecules: von Mises mixtures on the soft torsions, a joint mixture on the joint group
/// (e.g. φ, ψ) and every other coordinate Gaussian given the soft torsions
/// (BaseDensity::fit_conditional, conditional_base.hpp).
struct ConditionalBaseOptions {
  static constexpr BaseKind kind = BaseKind::conditional_gaussian;
  int components = 4;             ///< base_components: most joint components (= experts) and most
                                  ///< von Mises per other soft torsion (BIC), 1 … 8
  int harmonics = 3;              ///< base_harmonics: harmonics of the soft torsions in the mean, 1 … 6
  bool experts = false;           ///< base_experts: one regression and covariance per joint component
  int em_iterations = 10;         ///< base_em_iterations (experts): most EM iterations, 1 … 1000
  double shrinkage = 1.0;         ///< base_shrinkage (experts): prior weight toward the pooled fit, [0, 1e6]
  double soft_threshold = 0.5;    ///< base_soft_threshold: circular sd (rad) above which a torsion is
                                  ///< soft (BaseDensity::wide_torsions), (0, 0.5]
  int joint_bins = 0;             ///< base_joint_bins: n of the n × n bin correction of the joint pair
                                  ///< (0: none, else 2 … 360)
  double joint_defensive = 0.01;  ///< base_joint_defensive (joint_bins > 0): mixture fraction of the
                                  ///< corrected bin masses, (0, 1]
  void read(JsonReader& r);
  void validate(const std::string& context = "generator") const;
  Json to_json() const;
};

/// The options of one base kind (the alternatives in the order of BaseKind).
using BaseOptions = std::variant<NormalBaseOptions, GaussianMixtureBaseOptions, UniformBaseOptions,
                                 VonMisesBaseOptions, VonMisesMixtureBaseOptions, ConditionalBaseOptions>;

/// The kind held by `options`.
BaseKind kind_of(const BaseOptions& options);
/// Default options of `kind`.
BaseOptions default_base_options(BaseKind kind);
/// validate / to_json of the alternative held.
void validate(const BaseOptions& options, const std::string& context = "generator");
Json to_json(const BaseOptions& options);

}  // namespace boltzlab::generators
