"""Python-defined targets: a double well written in NumPy gives the same samples as the
C++ double well (potentials/double_well.json) under the same flow and seed, through the
per-particle path (Langevin flows) and the batched path (interacting flows, one callback
per step); gradients by central differences; errors raised in Python reach the caller."""
import unittest

import numpy as np

from common import DoubleWell, TempDirTest, bl, potential

OPTIONS = {"particles": 64, "steps": 60}


class SameSamplesAsCpp(TempDirTest):
    def setUp(self):
        super().setUp()
        self.cpp = bl.load_potential(potential("double_well.json")).target

    def compare(self, flow, options=OPTIONS, threads=0):
        dw = DoubleWell()
        py = bl.python_target(dw)
        ref = bl.run_flow(self.cpp, flow=flow, options=options, seed=21)
        run = bl.run_flow(py, flow=flow, options=options, seed=21, threads=threads)
        self.assertTrue(np.array_equal(run.samples, ref.samples, equal_nan=True), flow)
        self.assertTrue(np.array_equal(run.reduced_energies, ref.reduced_energies, equal_nan=True), flow)
        self.assertTrue(np.array_equal(run.trace["mean_energy"], ref.trace["mean_energy"], equal_nan=True), flow)
        self.assertEqual(run.energy_evaluations, ref.energy_evaluations)
        return dw, py, run

    def test_langevin_flows(self):
        for flow in ("mala", "baoab"):
            dw, py, run = self.compare(flow)
            # The per-particle path: one row per callback.
            self.assertEqual(set(dw.batch_sizes), {1})
            self.assertGreater(py.callback_calls, OPTIONS["particles"] * OPTIONS["steps"])

    def test_interacting_flow_batches_the_whole_ensemble(self):
        dw, py, run = self.compare("svgd", {"particles": 64, "steps": 40, "step_size": 0.01})
        # evaluate_batch: one callback with all 64 particles per evaluation.
        self.assertEqual(set(dw.batch_sizes), {64})
        self.assertTrue(run.interacting)

    def test_thread_count_does_not_matter(self):
        self.compare("mala", threads=1)
        self.compare("mala", threads=2)

    def test_batched_u_and_grad_match_cpp(self):
        x = np.random.default_rng(3).standard_normal((100, 2)) * 1.5
        py = bl.python_target(DoubleWell())
        self.assertTrue(np.array_equal(py.u(x), self.cpp.u(x)))
        self.assertTrue(np.array_equal(py.grad_u(x), self.cpp.grad_u(x)))

    def test_central_differences_without_grad_u(self):
        dw = DoubleWell()
        fd = bl.PythonTarget(dw.u, 2, name="fd")
        x = np.random.default_rng(4).standard_normal((20, 2)) * 1.5
        dw.batch_sizes.clear()
        g = fd.grad_u(x)
        # Central differences with h = 1e-5 max(1, |x|): truncation error h² |u'''| / 6
        # ≈ 1e-10 · 4·3·6·|x| and rounding ≈ ε |u| / h ≈ 1e-11 · 30: far below 1e-6.
        np.testing.assert_allclose(g, self.cpp.grad_u(x), rtol=0, atol=1e-6)
        self.assertEqual(dw.batch_sizes, [20, 2 * 2 * 20])  # u, then all shifts in one call

    def test_u_and_grad_callback(self):
        dw = DoubleWell()
        calls = []

        def both(x):
            calls.append(x.shape)
            return dw.u(x), dw.grad_u(x)

        py = bl.PythonTarget(dw.u, 2, u_and_grad=both)
        ref = bl.run_flow(self.cpp, flow="ula", options=OPTIONS, seed=8)
        run = bl.run_flow(py, flow="ula", options=OPTIONS, seed=8)
        self.assertTrue(np.array_equal(run.samples, ref.samples, equal_nan=True))
        self.assertGreater(len(calls), 0)


class ParticleSystem(unittest.TestCase):
    """A Python DW4 (potentials/dw4.json: u = Σ_{i<j} b (d − d0)² + c (d − d0)⁴, a = 0,
    τ = 1) with particle_layout (4, 2): the flows sample it on the centre-of-mass-free
    subspace, as the C++ dw4."""
    b, c, d0 = -4.0, 0.9, 4.0

    def pairs(self, x):
        p = x.reshape(x.shape[0], 4, 2)
        i, j = np.triu_indices(4, k=1)
        diff = p[:, i, :] - p[:, j, :]
        return p, i, j, diff, np.sqrt((diff * diff).sum(axis=2))

    def u(self, x):
        _, _, _, _, d = self.pairs(x)
        r = d - self.d0
        return (self.b * r ** 2 + self.c * r ** 4).sum(axis=1)

    def grad_u(self, x):
        p, i, j, diff, d = self.pairs(x)
        r = d - self.d0
        f = ((2.0 * self.b * r + 4.0 * self.c * r ** 3) / d)[:, :, None] * diff
        g = np.zeros_like(p)
        np.add.at(g, (slice(None), i), f)
        np.add.at(g, (slice(None), j), -f)
        return g.reshape(x.shape[0], 8)

    def test_centre_of_mass_stays_removed(self):
        cpp = bl.load_potential(potential("dw4.json"))
        py = bl.PythonTarget(self.u, 8, grad_u=self.grad_u, name="dw4_py", particle_layout=(4, 2))
        self.assertEqual(py.particle_layout, (4, 2))
        x0 = np.random.default_rng(6).standard_normal((32, 8)) * 2.0 + 5.0  # centre of mass far from 0
        # Same energies and gradients as the C++ target up to rounding (sums in another order).
        np.testing.assert_allclose(py.u(x0), cpp.target.u(x0), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(py.grad_u(x0), cpp.target.grad_u(x0), rtol=1e-12, atol=1e-9)
        run = bl.run_flow(py, x0, flow="mala", options={"steps": 50}, seed=2)
        centre = run.samples.reshape(32, 4, 2).mean(axis=1)
        self.assertLess(np.abs(centre).max(), 1e-12)  # initial centring, then projected moves
        p0 = x0.reshape(32, 4, 2)
        centred0 = (p0 - p0.mean(axis=1, keepdims=True)).reshape(32, 8)
        self.assertGreater(np.abs(run.samples - centred0).max(), 0.1)  # and the particles moved

    def test_bad_layout(self):
        with self.assertRaisesRegex(bl.ConfigError, r"particle_layout \(3, 2\) does not multiply to dim 8"):
            bl.PythonTarget(self.u, 8, particle_layout=(3, 2))


class Errors(unittest.TestCase):
    def test_python_exception_propagates_from_worker_threads(self):
        def u(x):
            if np.any(x[:, 0] > 1.0):
                raise ZeroDivisionError("u is undefined beyond x0 = 1")
            return np.zeros(x.shape[0])

        target = bl.PythonTarget(u, 2, grad_u=lambda x: np.zeros_like(x))
        with self.assertRaisesRegex(ZeroDivisionError, "undefined beyond"):
            bl.run_flow(target, flow="ula", options={"particles": 256, "steps": 5}, seed=1, threads=2)

    def test_wrong_shape(self):
        target = bl.PythonTarget(lambda x: x, 2, name="broken")
        with self.assertRaises(bl.DomainError) as ctx:
            target.u(np.zeros((3, 2)))
        self.assertEqual(str(ctx.exception), "broken: u returned shape (3, 2), expected (3,)")

    def test_bad_definition(self):
        with self.assertRaisesRegex(bl.ConfigError, "dim is 0"):
            bl.PythonTarget(lambda x: x, 0)
        with self.assertRaisesRegex(bl.ConfigError, "u is not callable"):
            bl.PythonTarget(3.0, 2)
        with self.assertRaisesRegex(bl.ConfigError, "dim is required"):
            bl.python_target(u=lambda x: x)


@unittest.skipUnless(bl.with_torch, "built without LibTorch")
class GeneratorTraining(unittest.TestCase):
    def test_reverse_kl_training_on_a_python_target(self):
        # Reverse KL only (no data): the trainer evaluates u and ∇u through evaluate_batch.
        options = {"preset": "ot-bg", "lambda": 0.0, "iterations": 4, "batch_size": 64, "width": 8,
                   "eval_every": 0}
        cpp = bl.load_potential(potential("double_well.json")).target
        dw = DoubleWell()
        _, h_cpp = bl.train_generator(cpp, options, seed=3)
        model, h_py = bl.train_generator(bl.python_target(dw), options, seed=3)
        self.assertEqual(h_py["loss"], h_cpp["loss"])
        self.assertEqual(len(h_py["loss"]), 4)
        self.assertTrue(all(b > 1 for b in dw.batch_sizes))  # batched callbacks
        x, log_q = model.sample(32, seed=5)
        self.assertEqual(x.shape, (32, 2))
        self.assertTrue(np.allclose(model.log_q(x), log_q, atol=1e-6))


if __name__ == "__main__":
    unittest.main()
