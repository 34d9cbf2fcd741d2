#include "boltzlab/molecules/zmatrix_builder.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "boltzlab/core/error.hpp"

namespace boltzlab::molecules {
namespace {

using Index = std::int64_t;
constexpr Index kNone = -1;

const std::vector<Index>& nbrs(const MolecularGraph& g, Index a) { return g.neighbors[static_cast<std::size_t>(a)]; }

/// Breadth-first distances and predecessors from `source` over atoms with `allowed[a]`.
void bfs(const MolecularGraph& g, Index source, const std::vector<char>& allowed, std::vector<Index>& dist,
         std::vector<Index>& pred) {
  dist.assign(static_cast<std::size_t>(g.atoms()), kNone);
  pred.assign(static_cast<std::size_t>(g.atoms()), kNone);
  std::deque<Index> queue{source};
  dist[static_cast<std::size_t>(source)] = 0;
  while (!queue.empty()) {
    const Index a = queue.front();
    queue.pop_front();
    for (const Index b : nbrs(g, a)) {
      if (!allowed[static_cast<std::size_t>(b)] || dist[static_cast<std::size_t>(b)] != kNone) continue;
      dist[static_cast<std::size_t>(b)] = dist[static_cast<std::size_t>(a)] + 1;
      pred[static_cast<std::size_t>(b)] = a;
      queue.push_back(b);
    }
  }
}

/// The path source → target along `pred` of a BFS from source.
std::vector<Index> path_to(Index target, const std::vector<Index>& pred) {
  std::vector<Index> path;
  for (Index a = target; a != kNone; a = pred[static_cast<std::size_t>(a)]) path.push_back(a);
  std::reverse(path.begin(), path.end());
  return path;
}

/// Farthest atom from `source` among the allowed ones (lowest index on ties).
Index farthest(const std::vector<Index>& dist) {
  Index best = kNone;
  for (std::size_t a = 0; a < dist.size(); ++a) {
    if (dist[a] != kNone && (best == kNone || dist[a] > dist[static_cast<std::size_t>(best)])) best = static_cast<Index>(a);
  }
  return best;
}

/// The longest shortest path (two BFS sweeps) of the heavy-atom graph, or of all atoms when
/// fewer than three are heavy.
std::vector<Index> longest_path(const MolecularGraph& g) {
  std::vector<char> allowed(static_cast<std::size_t>(g.atoms()), 0);
  Index heavy = 0;
  for (Index a = 0; a < g.atoms(); ++a) heavy += g.is_hydrogen(a) ? 0 : 1;
  for (Index a = 0; a < g.atoms(); ++a) allowed[static_cast<std::size_t>(a)] = heavy < 3 || !g.is_hydrogen(a);
  Index start = 0;
  while (!allowed[static_cast<std::size_t>(start)]) ++start;
  std::vector<Index> dist, pred;
  bfs(g, start, allowed, dist, pred);
  const Index end0 = farthest(dist);
  bfs(g, end0, allowed, dist, pred);
  return path_to(farthest(dist), pred);
}

/// The placement state: order, parents (tree predecessor) and placed flags.
struct Placement {
  std::vector<Index> order;    // atoms in placement order (anchors first)
  std::vector<Index> parent;   // tree predecessor; for the anchors the convention of the file comment
  std::vector<Index> rank;     // position in `order`, or kNone
  void place(Index a, Index from) {
    parent[static_cast<std::size_t>(a)] = from;
    rank[static_cast<std::size_t>(a)] = static_cast<Index>(order.size());
    order.push_back(a);
  }
  bool placed(Index a) const { return rank[static_cast<std::size_t>(a)] != kNone; }
};

/// Anchors and main chain (alternating sides outward), then heavy atoms breadth first, then hydrogens.
Placement place_atoms(const MolecularGraph& g, const std::vector<Index>& chain) {
  Placement p;
  p.parent.assign(static_cast<std::size_t>(g.atoms()), kNone);
  p.rank.assign(static_cast<std::size_t>(g.atoms()), kNone);
  const std::size_t mid = (chain.size() - 1) / 2;
  const Index a0 = chain[mid - 1], a1 = chain[mid], a2 = chain[mid + 1];
  p.place(a0, a1);
  p.place(a1, a0);
  p.place(a2, a1);
  for (std::size_t step = 2; step <= chain.size(); ++step) {
    if (step <= mid) p.place(chain[mid - step], chain[mid - step + 1]);
    if (mid + step < chain.size()) p.place(chain[mid + step], chain[mid + step - 1]);
  }
  for (std::size_t q = 0; q < p.order.size(); ++q) {  // grows while iterating: breadth first
    const Index a = p.order[q];
    for (const Index b : nbrs(g, a)) {
      if (!p.placed(b) && !g.is_hydrogen(b)) p.place(b, a);
    }
  }
  const std::size_t heavy_placed = p.order.size();
  for (std::size_t q = 0; q < heavy_placed; ++q) {
    const Index a = p.order[q];
    for (const Index b : nbrs(g, a)) {
      if (!p.placed(b)) p.place(b, a);
    }
  }
  return p;
}

/// Z-matrix row of atom i (placed from j) given everything placed before it.
ZMatrixRow make_row(const MolecularGraph& g, const Placement& p, Index i) {
  const Index j = p.parent[static_cast<std::size_t>(i)];
  const Index k = p.parent[static_cast<std::size_t>(j)];
  const Index ri = p.rank[static_cast<std::size_t>(i)];
  auto before_i = [&](Index a) { return p.rank[static_cast<std::size_t>(a)] != kNone && p.rank[static_cast<std::size_t>(a)] < ri; };
  auto earliest = [&](const std::vector<Index>& candidates, std::function<bool(Index)> ok) {
    Index best = kNone;
    for (const Index a : candidates) {
      if (ok(a) && (best == kNone || p.rank[static_cast<std::size_t>(a)] < p.rank[static_cast<std::size_t>(best)])) best = a;
    }
    return best;
  };
  // A placed sibling of i on j: improper torsion.
  Index l = earliest(nbrs(g, j), [&](Index a) { return a != k && a != i && before_i(a); });
  if (l == kNone) {  // proper torsion about j–k
    const Index pk = p.parent[static_cast<std::size_t>(k)];
    if (pk != j && pk != i && before_i(pk) && std::count(nbrs(g, k).begin(), nbrs(g, k).end(), pk)) {
      l = pk;
    } else {
      l = earliest(nbrs(g, k), [&](Index a) { return a != j && a != i && before_i(a); });
    }
  }
  if (l == kNone) l = earliest(p.order, [&](Index a) { return a != j && a != k && a != i && before_i(a); });
  return {i, j, k, l};
}

}  // namespace

std::vector<Index> main_chain(const MolecularGraph& g, const std::vector<Dihedral>& backbone) {
  if (!backbone.empty()) {
    const auto first = static_cast<Index>(backbone.front().atoms[0]);
    const auto last = static_cast<Index>(backbone.back().atoms[3]);
    std::vector<Index> dist, pred;
    bfs(g, first, std::vector<char>(static_cast<std::size_t>(g.atoms()), 1), dist, pred);
    if (dist[static_cast<std::size_t>(last)] != kNone) {
      auto path = path_to(last, pred);
      if (path.size() >= 3) return path;
    }
  }
  return longest_path(g);
}

std::vector<Index> atom_classes(const MolecularGraph& g) {
  // Morgan-style refinement: start from (element, degree), then repeatedly re-rank each atom by
  // (its class, the sorted classes of its neighbours) until the number of classes stops growing.
  const auto n = static_cast<std::size_t>(g.atoms());
  std::vector<Index> cls(n);
  {
    std::map<std::pair<std::string, std::size_t>, Index> ids;
    for (std::size_t a = 0; a < n; ++a) ids.emplace(std::make_pair(g.topology.elements[a], g.neighbors[a].size()), 0);
    Index next = 0;
    for (auto& [key, id] : ids) id = next++;
    for (std::size_t a = 0; a < n; ++a) cls[a] = ids[{g.topology.elements[a], g.neighbors[a].size()}];
  }
  std::size_t classes = std::set<Index>(cls.begin(), cls.end()).size();
  for (std::size_t round = 0; round < n; ++round) {
    std::map<std::pair<Index, std::vector<Index>>, Index> ids;
    std::vector<std::pair<Index, std::vector<Index>>> keys(n);
    for (std::size_t a = 0; a < n; ++a) {
      std::vector<Index> around;
      for (const Index b : g.neighbors[a]) around.push_back(cls[static_cast<std::size_t>(b)]);
      std::sort(around.begin(), around.end());
      keys[a] = {cls[a], around};
      ids.emplace(keys[a], 0);
    }
    Index next = 0;
    for (auto& [key, id] : ids) id = next++;
    for (std::size_t a = 0; a < n; ++a) cls[a] = ids[keys[a]];
    if (ids.size() == classes) break;
    classes = ids.size();
  }
  return cls;
}

std::vector<ChiralCenter> find_stereocentres(const MolecularGraph& g, const std::vector<double>& x) {
  const auto cls = atom_classes(g);
  std::vector<ChiralCenter> out;
  for (Index c = 0; c < g.atoms(); ++c) {
    const auto& nb = nbrs(g, c);
    if (nb.size() != 4) continue;
    std::set<Index> distinct;
    for (const Index b : nb) distinct.insert(cls[static_cast<std::size_t>(b)]);
    if (distinct.size() != 4) continue;
    // The three neighbours of the check: heavy atoms first, then by index.
    std::vector<Index> order(nb.begin(), nb.end());
    std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return !g.is_hydrogen(a) && g.is_hydrogen(b); });
    auto at = [&](Index a, int k) { return x[static_cast<std::size_t>(3 * a + k)]; };
    double u[3], v[3], w[3];
    for (int k = 0; k < 3; ++k) {
      u[k] = at(order[0], k) - at(c, k);
      v[k] = at(order[1], k) - at(c, k);
      w[k] = at(order[2], k) - at(c, k);
    }
    const double s = u[0] * (v[1] * w[2] - v[2] * w[1]) + u[1] * (v[2] * w[0] - v[0] * w[2]) +
                     u[2] * (v[0] * w[1] - v[1] * w[0]);
    // Planar within noise (|s| below 1e-6 nm³, ~0.1 % of a tetrahedral centre's volume): no reliable sign.
    if (!(std::abs(s) > 1e-6)) continue;
    out.push_back({g.label(c), c, order[0], order[1], order[2], s > 0 ? 1 : -1});
  }
  return out;
}

ZMatrix build_zmatrix(const MolecularGraph& g, const std::vector<double>& reference, const std::string& context) {
  if (g.atoms() < 3) throw ConfigError(context + ": internal coordinates need at least 3 atoms");
  if (g.components() != 1)
    throw ConfigError(context + ": the bond graph has " + std::to_string(g.components()) + " separate molecules");
  if (static_cast<Index>(reference.size()) != 3 * g.atoms())
    throw ConfigError(context + ": the reference structure has " + std::to_string(reference.size()) +
                      " coordinates for " + std::to_string(g.atoms()) + " atoms");
  const auto chain = main_chain(g, backbone_dihedrals(g.topology));
  if (chain.size() < 3) throw ConfigError(context + ": no chain of three bonded atoms to anchor the Z-matrix");
  const Placement p = place_atoms(g, chain);
  ZMatrix z;
  z.n_atoms = g.atoms();
  z.anchors = {p.order[0], p.order[1], p.order[2]};
  for (std::size_t q = 3; q < p.order.size(); ++q) z.rows.push_back(make_row(g, p, p.order[q]));
  z.chiral_centers = find_stereocentres(g, reference);
  z.atom_names = g.topology.atom_names;
  z.validate(context);
  return z;
}

}  // namespace boltzlab::molecules
