"""Boltzmann generators from Python (LibTorch builds): bl.bg_sample is bg-sample's own
job (same samples, log q and summary numbers on the same seed), and a model file loaded
with bl.Generator samples and evaluates log q as the run recorded."""
import json
import unittest

import numpy as np

from common import TempDirTest, bl, potential, tool

ARGS = {"samples": 100, "iterations": 2, "seed": 4}


@unittest.skipUnless(bl.with_torch, "built without LibTorch")
class Generators(TempDirTest):
    def test_bg_sample_parity_and_model_file(self):
        cli, py = self.path("cli"), self.path("py")
        tool("bg-sample", "--potential", potential("double_well.json"), "--out", cli, "-q",
             "--samples", ARGS["samples"], "--iterations", ARGS["iterations"], "--seed", ARGS["seed"])
        summary = bl.bg_sample(potential("double_well.json"), py, **ARGS)
        for name in ("samples.npy", "log_q.npy", "log_weights.npy"):
            self.assertTrue(np.array_equal(np.load(f"{cli}/{name}"), np.load(f"{py}/{name}")), name)
        with open(f"{cli}/summary.json") as f:
            cli_summary = json.load(f)
        self.assertEqual(summary["importance"]["kish_ess"], cli_summary["importance"]["kish_ess"])

        model = bl.Generator.load(f"{cli}/model.pt")
        self.assertEqual((model.kind, model.dim), ("ot-flow", 2))
        x, log_q = model.sample(ARGS["samples"], seed=ARGS["seed"])
        self.assertTrue(np.array_equal(x, np.load(f"{cli}/samples.npy")))
        self.assertTrue(np.array_equal(log_q, np.load(f"{cli}/log_q.npy")))
        # log q of given points by the reverse ODE: equal to the forward value up to the
        # RK4 error of the round trip (8 steps on a 2-iteration model: far below 1e-6).
        np.testing.assert_allclose(model.log_q(x), log_q, rtol=0, atol=1e-6)

    def test_model_errors(self):
        with self.assertRaises(bl.IoError):
            bl.Generator.load(self.path("missing.pt"))
        with self.assertRaisesRegex(bl.ConfigError, "generator.widht: unknown key"):
            bl.train_generator(bl.load_potential(potential("double_well.json")).target, {"widht": 8})


if __name__ == "__main__":
    unittest.main()
