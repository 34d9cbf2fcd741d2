#pragma once
/// \file base_registry.hpp
/// The registry of base-density kinds (base_options.hpp): one row per kind with its name (the
/// value of generator.base), the targets it applies to, the generator keys its options read,
/// its reader and its fitter. A new kind is one options struct, one alternative of
/// BaseOptions and one row here; read_base_options and fit_base need no change.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "boltzlab/generators/base_options.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

/// What a base is fitted to.
struct BaseFitData {
  torch::Tensor y;                  ///< data in the flow's coordinates (B × m; undefined: none)
  torch::Tensor torsion_mask;       ///< Bool m: the periodic columns
  std::vector<std::int64_t> joint;  ///< conditional_gaussian: the joint torsion group (e.g. φ, ψ)
};

/// The kind of target a base is read for.
struct BaseTarget {
  bool molecular = false;        ///< a molecule (flow on internal coordinates, torsions periodic)
  bool particle_system = false;  ///< a particle system (centre-of-mass-free flow)
};

/// One row of the registry.
struct BaseKindSpec {
  BaseKind kind;
  const char* name;               ///< generator.base
  bool molecular;                 ///< applies to molecules (else to the other targets)
  bool particle_systems;          ///< (other targets) also applies to particle systems
  bool needs_data;                ///< fitted to data
  std::vector<std::string> keys;  ///< the generator keys its options read (besides "base")
  /// Reads the kind's keys (defaults for the absent ones); ConfigError naming the key.
  BaseOptions (*read)(JsonReader& r);
  /// The fitted density (for the options of this kind); nullopt: the standard normal base.
  /// \throws DomainError (e.g. data unfit for the kind).
  std::optional<BaseDensity> (*fit)(const BaseOptions& options, const BaseFitData& data);
};

/// All rows, in the order the kinds are listed in messages (other targets first, then molecules).
const std::vector<BaseKindSpec>& base_kinds();
const BaseKindSpec& base_kind_spec(BaseKind kind);
/// The row named `name`, or null.
const BaseKindSpec* find_base_kind(const std::string& name);

/// The default kind: von_mises for molecules, normal otherwise.
BaseKind default_base_kind(const BaseTarget& target);

/// Reads "base" and the base keys of a generator section (JsonReader context e.g.
/// "potentials/x.json: generator"): every base key is known to the reader (for "did you mean"),
/// a kind that does not apply to `target` and a key that the kind does not use are refused
/// with one ConfigError naming the key ("…generator.base_experts: is only used with "base":
/// "conditional_gaussian""), then the kind reads its keys.
BaseOptions read_base_options(JsonReader& r, const BaseTarget& target);

/// The kind's fitter (see BaseKindSpec::fit). \throws DomainError.
std::optional<BaseDensity> fit_base(const BaseOptions& options, const BaseFitData& data);

}  // namespace boltzlab::generators
