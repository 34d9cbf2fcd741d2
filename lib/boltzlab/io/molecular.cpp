#include "boltzlab/io/molecular.hpp"

namespace boltzlab {

// Filled in by the OpenMM-target work (issue 3); until then molecular runs get the
// generic outputs only, and the summary says so.
void write_molecular_outputs(const RunDirectory&, const Target& target, const RowMatrix&,
                             const Eigen::VectorXd*, nlohmann::json& summary) {
  if (!target.topology()) return;
  summary["molecular"] = {{"note", "molecular outputs not available in this build"}};
}

}  // namespace boltzlab
