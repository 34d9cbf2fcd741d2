#include "boltzlab/generators/path_measures.hpp"

namespace boltzlab::generators {

PathMeasures measure_paths(BoltzmannGenerator& model, std::int64_t n, std::uint64_t seed, int fine_steps,
                           double tolerance) {
  torch::NoGradGuard ng;
  const auto z = model.base_sample(n, seed);
  PathMeasures m;
  m.path = model.forward_path(z, fine_steps, true, 0.0);
  auto length = torch::zeros({z.size(0)}, z.options());
  for (std::size_t k = 0; k + 1 < m.path.x.size(); ++k)
    length = length + (m.path.x[k + 1] - m.path.x[k]).norm(2, {1});
  m.path_length = length.mean().item<double>();
  m.transport = m.path.end.transport.mean().item<double>();
  const auto& reference = m.path.end.x;
  for (const int steps : {1, 2, 4, 8, 16, 32})
    if ((model.forward(z, steps, false).x - reference).abs().max().item<double>() < tolerance) {
      m.nfe = 4 * steps;
      break;
    }
  return m;
}

}  // namespace boltzlab::generators
