"""Bad input raises a boltzlab exception carrying the command-line tools' message:
the same potential file or setting gives the same one line in Python as after
'wgf-relax: error: ' on stderr."""
import json
import unittest

import numpy as np

from common import TempDirTest, bl, potential, tool_error


class SameMessageAsTheTool(TempDirTest):
    def write_potential(self, sampler=None, parameters=None):
        doc = {"type": "double_well", "parameters": parameters or {"dim": 2}}
        if sampler is not None:
            doc["sampler"] = sampler
        path = self.path("p.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def assert_same(self, exc_type, cli_args, call):
        message = tool_error("wgf-relax", "--out", self.path("out"), "-q", *cli_args)
        with self.assertRaises(exc_type) as ctx:
            call()
        self.assertEqual(str(ctx.exception), message)
        return message

    def test_bad_sampler_value(self):
        path = self.write_potential(sampler={"steps": -3})
        msg = self.assert_same(bl.ConfigError, ["--potential", path], lambda: bl.run_flow(bl.load_potential(path)))
        self.assertIn("sampler.steps: -3", msg)

    def test_unknown_sampler_key_with_suggestion(self):
        path = self.write_potential(sampler={"stepz": 10})
        msg = self.assert_same(bl.ConfigError, ["--potential", path], lambda: bl.run_flow(bl.load_potential(path)))
        self.assertIn("did you mean 'steps'", msg)

    def test_unknown_flow(self):
        pot = potential("double_well.json")
        msg = self.assert_same(bl.ConfigError, ["--potential", pot, "--flow", "malla"],
                               lambda: bl.run_flow(bl.load_potential(pot), flow="malla"))
        self.assertIn("mala", msg)

    def test_bad_flow_parameter(self):
        path = self.write_potential(sampler={"params": {"mala": {"target_acceptance": 1.5}}})
        self.assert_same(bl.ConfigError, ["--potential", path], lambda: bl.run_flow(bl.load_potential(path)))

    def test_bad_target_parameter(self):
        path = self.write_potential(parameters={"dim": 2, "barier": 3.0})
        msg = self.assert_same(bl.ConfigError, ["--potential", path], lambda: bl.load_potential(path))
        self.assertIn("did you mean 'barrier'", msg)

    def test_missing_file_is_an_io_error(self):
        path = self.path("missing.json")
        self.assert_same(bl.IoError, ["--potential", path], lambda: bl.load_potential(path))
        self.assertTrue(issubclass(bl.IoError, OSError) and issubclass(bl.ConfigError, ValueError))


class ArrayInput(unittest.TestCase):
    def setUp(self):
        self.target = bl.load_potential(potential("double_well.json")).target

    def test_wrong_width(self):
        with self.assertRaises(bl.DomainError) as ctx:
            self.target.u(np.zeros((4, 3)))
        self.assertEqual(str(ctx.exception),
                         "double_well: configurations have 3 coordinates, but the target has dimension 2")

    def test_non_finite_initial_ensemble(self):
        x = np.zeros((4, 2))
        x[2, 1] = np.nan
        with self.assertRaisesRegex(bl.DomainError, "x: row 2 has a non-finite coordinate"):
            bl.run_flow(self.target, x)

    def test_options_must_be_json(self):
        with self.assertRaisesRegex(bl.ConfigError, "options: not JSON-serializable"):
            bl.run_flow(self.target, options={"steps": object()})

    def test_estimator_input(self):
        with self.assertRaisesRegex(bl.DomainError, "log_weights: expected a 1-D array"):
            bl.kish_ess(np.zeros((2, 2)))


if __name__ == "__main__":
    unittest.main()
