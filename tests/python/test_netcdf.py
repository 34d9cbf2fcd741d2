"""NetCDF output in ArviZ's InferenceData layout: wgf-relax --netcdf and
bl.write_netcdf files open in xarray with groups posterior (chain, draw, x_dim_0) and
sample_stats (chain, draw), holding the run's values; bg-sample --netcdf writes what
bl.inference_data_from_run makes of its run directory (the other tools' --netcdf:
tests/cli/test_netcdf_tools.sh)."""
import os
import unittest

import numpy as np

from common import BIN_DIR, SOURCE_DIR, TempDirTest, bl, potential, tool, tool_error

try:
    import xarray as xr
except ImportError:  # python3-xarray is in tools/setup.sh; say so rather than pass
    xr = None


@unittest.skipUnless(bl.netcdf_available(), "built without libnetcdf")
class NetCdf(TempDirTest):
    def setUp(self):
        super().setUp()
        if xr is None:
            self.fail("python3-xarray is not installed")

    def test_wgf_relax_frames(self):
        nc, out = self.path("run.nc"), self.path("run")
        tool("wgf-relax", "--potential", potential("double_well.json"), "--flow", "mala", "--particles", 12,
             "--steps", 40, "--thin", 10, "--seed", 3, "--out", out, "--netcdf", nc, "-q", "--no-plots")
        post = xr.open_dataset(nc, group="posterior")
        stats = xr.open_dataset(nc, group="sample_stats")
        self.assertEqual(dict(post.sizes), {"chain": 12, "draw": 4, "x_dim_0": 2})
        self.assertEqual(post["x"].dims, ("chain", "draw", "x_dim_0"))
        self.assertEqual(stats["lp"].dims, ("chain", "draw"))
        frames = np.load(out + "/frames.npy")  # (F, N, d)
        self.assertTrue(np.array_equal(post["x"].values, np.transpose(frames, (1, 0, 2))))
        # The last frame is the final ensemble: its energies are reduced_energies.npy.
        self.assertTrue(np.array_equal(stats["reduced_energy"].values[:, -1], np.load(out + "/reduced_energies.npy")))
        self.assertTrue(np.array_equal(stats["lp"].values, -stats["reduced_energy"].values))
        self.assertEqual(post.attrs["tool"], "wgf-relax")
        self.assertEqual(post.attrs["flow"], "mala")
        self.assertEqual(list(post["chain"].values), list(range(12)))

    def test_wgf_relax_without_frames_and_bad_path(self):
        nc, out = self.path("final.nc"), self.path("run")
        tool("wgf-relax", "--potential", potential("double_well.json"), "--particles", 8, "--steps", 10,
             "--out", out, "--netcdf", nc, "-q", "--no-plots")
        post = xr.open_dataset(nc, group="posterior")
        self.assertEqual(dict(post.sizes), {"chain": 8, "draw": 1, "x_dim_0": 2})
        self.assertTrue(np.array_equal(post["x"].values[:, 0, :], np.load(out + "/samples.npy")))
        msg = tool_error("wgf-relax", "--potential", potential("double_well.json"), "--out", self.path("r2"),
                         "--netcdf", self.path("no/such/dir/x.nc"), "-q")
        self.assertIn("does not exist", msg)

    def test_python_writer(self):
        rng = np.random.default_rng(0)
        x, lw = rng.standard_normal((1, 50, 3)), rng.standard_normal((1, 50))
        nc = self.path("iw.nc")
        bl.write_netcdf(nc, {"x": x}, {"log_weight": lw}, {"tool": "test"})
        post = xr.open_dataset(nc, group="posterior")
        stats = xr.open_dataset(nc, group="sample_stats")
        self.assertTrue(np.array_equal(post["x"].values, x))
        self.assertTrue(np.array_equal(stats["log_weight"].values, lw))
        self.assertEqual(post.attrs["tool"], "test")
        with self.assertRaisesRegex(bl.DomainError, r"sample_stats.lp: \(chain, draw\) = \(1, 49\)"):
            bl.write_netcdf(self.path("bad.nc"), {"x": x}, {"lp": lw[:, :49]})

    def test_importance_weighted_run_directory(self):
        run = self.path("iw_run")
        os.mkdir(run)
        rng = np.random.default_rng(1)
        x, lq, u = rng.standard_normal((40, 2)), rng.standard_normal(40), rng.standard_normal(40)
        for name, a in (("samples", x), ("log_q", lq), ("reduced_energies", u), ("log_weights", -u - lq)):
            np.save(os.path.join(run, name + ".npy"), a)
        posterior, stats = bl.inference_data_from_run(run)
        bl.write_netcdf(self.path("iw_run.nc"), posterior, stats, {"tool": "bg-sample"})
        post = xr.open_dataset(self.path("iw_run.nc"), group="posterior")
        st = xr.open_dataset(self.path("iw_run.nc"), group="sample_stats")
        self.assertEqual(dict(post.sizes), {"chain": 1, "draw": 40, "x_dim_0": 2})
        self.assertTrue(np.array_equal(st["log_weight"].values[0], -u - lq))
        self.assertTrue(np.array_equal(st["lp"].values[0], -u))

    @unittest.skipUnless(os.path.exists(os.path.join(BIN_DIR, "bg-sample")), "bg-sample not built (no LibTorch)")
    def test_bg_sample_file_is_inference_data_from_run(self):
        run, nc = self.path("bg"), self.path("bg.nc")
        tool("bg-sample", "--potential", os.path.join(SOURCE_DIR, "tests", "data", "bg_gaussian2d.json"), "--out", run,
             "--iterations", 5, "--samples", 100, "--threads", 2, "-q", "--netcdf", nc)
        posterior, stats = bl.inference_data_from_run(run)
        post = xr.open_dataset(nc, group="posterior")
        st = xr.open_dataset(nc, group="sample_stats")
        self.assertEqual(list(post.data_vars), list(posterior))
        self.assertEqual(list(st.data_vars), list(stats))
        self.assertEqual(post["x"].dims, ("chain", "draw", "x_dim_0"))
        self.assertTrue(np.array_equal(post["x"].values, posterior["x"]))
        for name, values in stats.items():
            self.assertEqual(st[name].dims, ("chain", "draw"))
            self.assertTrue(np.array_equal(st[name].values, values), name)
        self.assertEqual(post.attrs["tool"], "bg-sample")

    def test_flow_run_helper(self):
        pot = bl.load_potential(potential("double_well.json"))
        run = bl.run_flow(pot, options={"particles": 6, "steps": 20, "thin": 5}, seed=1)
        posterior, stats = bl.inference_data_from_flow(run, pot.target)
        bl.write_netcdf(self.path("f.nc"), posterior, stats)
        post = xr.open_dataset(self.path("f.nc"), group="posterior")
        stats = xr.open_dataset(self.path("f.nc"), group="sample_stats")
        self.assertEqual(dict(post.sizes), {"chain": 6, "draw": 4, "x_dim_0": 2})
        self.assertTrue(np.array_equal(stats["reduced_energy"].values[:, -1], run.reduced_energies))


if __name__ == "__main__":
    unittest.main()
