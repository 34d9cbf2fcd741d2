"""The Python API reproduces the command-line tools bit for bit: the same potential,
settings and seed give the same samples and energies from bl.run_flow as from wgf-relax
(default initial ensemble and --init), for independent and interacting flows, and the
estimators give iw-diag's numbers."""
import json
import unittest

import numpy as np

from common import TempDirTest, bl, potential, tool


class FlowParity(TempDirTest):
    def relax(self, *args):
        out = self.path("run")
        tool("wgf-relax", "--out", out, "-q", "--no-plots", *args)
        return np.load(out + "/samples.npy"), np.load(out + "/reduced_energies.npy")

    def test_mala_default_initial_ensemble(self):
        x_cli, u_cli = self.relax("--potential", potential("double_well.json"), "--flow", "mala",
                                  "--particles", 96, "--steps", 120, "--seed", 11)
        run = bl.run_flow(bl.load_potential(potential("double_well.json")), flow="mala",
                          options={"particles": 96, "steps": 120}, seed=11)
        self.assertEqual(run.samples.shape, (96, 2))
        self.assertTrue(np.array_equal(run.samples, x_cli))
        self.assertTrue(np.array_equal(run.reduced_energies, u_cli))
        # Not vacuous: another seed moves the particles elsewhere.
        other = bl.run_flow(bl.load_potential(potential("double_well.json")), flow="mala",
                            options={"particles": 96, "steps": 120}, seed=12)
        self.assertFalse(np.array_equal(other.samples, x_cli))

    def test_svgd_from_init_file_with_params(self):
        x0 = np.random.default_rng(5).standard_normal((48, 32))
        np.save(self.path("init.npy"), x0)
        x_cli, u_cli = self.relax("--potential", potential("manywell32.json"), "--flow", "svgd",
                                  "--init", self.path("init.npy"), "--steps", 30, "--seed", 4,
                                  "--step-size", 0.01, "--param", "bandwidth=1.5")
        run = bl.run_flow(bl.load_potential(potential("manywell32.json")), x0, flow="svgd",
                          options={"steps": 30, "step_size": 0.01, "params": {"svgd": {"bandwidth": 1.5}}},
                          seed=4)
        self.assertTrue(np.array_equal(run.samples, x_cli))
        self.assertTrue(np.array_equal(run.reduced_energies, u_cli))
        self.assertFalse(np.array_equal(run.samples, x0))

    def test_thread_count_does_not_matter(self):
        pot = bl.load_potential(potential("manywell32.json"))
        one = bl.run_flow(pot, flow="ula", options={"particles": 64, "steps": 50, "step_size": 0.005},
                          seed=2, threads=1)
        two = bl.run_flow(pot, flow="ula", options={"particles": 64, "steps": 50, "step_size": 0.005},
                          seed=2, threads=2)
        self.assertTrue(np.array_equal(one.samples, two.samples))

    def test_openmm_target_energies_match_the_tool(self):
        # 0 steps: reduced_energies.npy are u at samples.npy, computed by the tool's target.
        x_cli, u_cli = self.relax("--potential", potential("alanine_dipeptide_vacuum.json"), "--flow", "ula",
                                  "--particles", 4, "--steps", 0, "--warmup", 0)
        target = bl.load_potential(potential("alanine_dipeptide_vacuum.json")).target
        self.assertEqual(target.dim, 66)
        u, g = target.u_and_grad(x_cli)
        self.assertTrue(np.array_equal(u, u_cli))
        self.assertTrue(np.all(np.isfinite(g)) and np.any(g != 0))
        self.assertEqual(target.u(x_cli[0]), u_cli[0])


class EstimatorParity(TempDirTest):
    def iw_diag(self, *args):
        return json.loads(tool("iw-diag", "--json", "--no-plots", "-q", *args).stdout)

    def test_importance_weights(self):
        lw = np.random.default_rng(1).standard_normal(2000) * 1.5
        np.save(self.path("lw.npy"), lw)
        cli = self.iw_diag("--log-weights", self.path("lw.npy"))["weights"]
        self.assertEqual(bl.kish_ess(lw), cli["kish_ess"])
        diag = bl.weight_diagnostics(lw)
        self.assertEqual(diag["kish_ess_clipped"], cli["kish_ess_clipped"])
        self.assertEqual(diag["max_weight_share"], cli["max_weight_share"])
        psis = bl.psis(lw)
        self.assertEqual(psis["khat"], cli["psis_khat"])
        self.assertEqual(psis["tail_length"], cli["psis_tail_length"])
        log_z = bl.log_z(lw)
        self.assertEqual(log_z["estimate"], cli["log_z"]["estimate"])
        self.assertEqual(log_z["standard_error"], cli["log_z"]["stderr"])
        # Equal weights: ESS = S exactly (not a vacuous comparison of two zeros).
        self.assertAlmostEqual(bl.kish_ess(np.full(100, -3.0)), 100.0, places=9)

    def test_chain_diagnostics(self):
        rng = np.random.default_rng(2)
        chains = np.cumsum(rng.standard_normal((4, 500)), axis=1) * 0.1 + rng.standard_normal((4, 500))
        np.save(self.path("ch.npy"), chains)
        cli = self.iw_diag("--chains", self.path("ch.npy"))["chains"]
        self.assertEqual(bl.rhat(chains), cli["rhat"][0])
        self.assertEqual(bl.ess_bulk(chains), cli["ess_bulk"][0])
        self.assertEqual(bl.ess_tail(chains), cli["ess_tail"][0])
        self.assertEqual(bl.ess_mean(chains), cli["ess_mean"][0])
        self.assertEqual(bl.autocorrelation_time(chains), cli["iat"][0])
        self.assertGreater(bl.rhat(chains), 1.1)  # random walks: not converged
        self.assertIsNone(bl.rhat(chains[:1]))  # one chain: R-hat cannot be computed


if __name__ == "__main__":
    unittest.main()
