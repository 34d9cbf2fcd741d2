"""boltzlab from Python: targets, particle flows, estimators, generators, NetCDF output.

The compiled part is ``boltzlab._boltzlab`` (python/*.cpp); this file adds the thin
Python conveniences. See docs/python.md for a tutorial.

    import boltzlab as bl
    pot = bl.load_potential("potentials/double_well.json")
    run = bl.run_flow(pot, flow="mala", options={"particles": 1024, "steps": 500}, seed=1)
    run.samples, run.reduced_energies, run.trace["mean_energy"]
"""
from types import SimpleNamespace as _Namespace

from ._boltzlab import *  # noqa: F401,F403
from ._boltzlab import (  # noqa: F401
    Error, ConfigError, DomainError, IoError, BackendError,
    Potential, PythonTarget, Target, _run_flow, with_torch,
)

__all__ = [name for name in dir() if not name.startswith("_")]


class FlowRun(_Namespace):
    """What run_flow returns: samples (N, d), reduced_energies (N,), log_weights (N,),
    frames (F, N, d), trace {"step", "mean_energy", ...}, statistics, health,
    steps_done, converged, energy_evaluations, non_finite_evaluations, seconds,
    flow, interacting, flow_params, seed."""


def python_target(obj=None, *, u=None, grad_u=None, u_and_grad=None, dim=None, name=None,
                  log_z=None, particle_layout=None):
    """A PythonTarget from an object with methods ``u`` (and optionally ``grad_u`` or
    ``u_and_grad``) and attributes ``dim`` (and optionally ``name``, ``log_z``,
    ``particle_layout``), or from the keyword arguments. Every callable takes an (B, d)
    float64 array; ``u`` returns (B,), ``grad_u`` (B, d), ``u_and_grad`` the pair."""
    def pick(value, attr, default=None):
        if value is not None:
            return value
        return getattr(obj, attr, default) if obj is not None else default

    dim = pick(dim, "dim")
    if dim is None:
        raise ConfigError("python_target: dim is required (an argument or an attribute of the object)")
    return PythonTarget(u=pick(u, "u"), dim=int(dim), grad_u=pick(grad_u, "grad_u"),
                        u_and_grad=pick(u_and_grad, "u_and_grad"),
                        name=pick(name, "name", type(obj).__name__ if obj is not None else "python"),
                        log_z=pick(log_z, "log_z"), particle_layout=pick(particle_layout, "particle_layout"))


def run_flow(target, x=None, flow=None, options=None, seed=None, threads=None, progress=False):
    """Runs a registered flow (flow_names(); wgf-relax --flow) on ``target`` (a Target,
    PythonTarget or Potential) and returns a FlowRun.

    ``options`` holds the keys of a potential file's "sampler" section (flow, particles,
    steps, warmup, step_size, thin, max_frames, monitor_every, beta_start, beta_steps,
    beta_schedule, tolerance, seed, init, params) and is read by wgf-relax's own code
    (resolve_relax_plan), so defaults, validation and messages are the tool's. With a
    Potential its "sampler" section comes first and ``options`` overrides its keys; the
    messages then name the file as wgf-relax does. ``flow`` and ``seed`` act as the
    --flow and --seed flags. ``x`` (N, d) is the initial ensemble (as --init; particle
    systems are centred); None builds the tool's default one (the same particles as
    wgf-relax with the same settings). ``threads`` sets the worker threads of this and
    later calls (set_num_threads; 0: all cores); None keeps the current setting."""
    section = {}
    context = "options"
    if isinstance(target, Potential):
        if isinstance(target.sampler, dict):
            section.update(target.sampler)
        if not options:
            context = target.path + ": sampler"
        target = target.target
    if options:
        if not isinstance(options, dict):
            raise ConfigError("options: expected a dict of sampler keys, got " + type(options).__name__)
        section.update(options)
    if flow is not None:
        section["flow"] = flow
    if seed is not None:
        section["seed"] = seed
    threads = None if threads is None else int(threads)
    return FlowRun(**_run_flow(target, section, context, x, threads, bool(progress)))


def inference_data_from_flow(run, target=None):
    """The (posterior, sample_stats) dicts of write_netcdf for a FlowRun, as
    wgf-relax --netcdf writes them: chains are the particles, draws the recorded frames
    (options "thin" > 0) or, without frames, the final ensemble as one draw; posterior
    "x" (chain, draw, x_dim_0), sample_stats "reduced_energy" (u) and "lp" (-u). With
    frames, u is evaluated on them with ``target`` (no sample_stats without it)."""
    import numpy as np
    if run.frames.shape[0] > 0:
        x = np.ascontiguousarray(np.transpose(run.frames, (1, 0, 2)))
        if target is None:
            return {"x": x}, {}
        n, f, d = x.shape
        u = np.asarray(target.u(x.reshape(n * f, d))).reshape(n, f)
    else:
        x = run.samples[:, None, :]
        u = run.reduced_energies[:, None]
    return {"x": x}, {"reduced_energy": u, "lp": -u}


def inference_data_from_run(run_dir):
    """The (posterior, sample_stats) dicts of write_netcdf for an importance-weighted run
    directory (bg-sample: samples.npy, log_weights.npy, log_q.npy, reduced_energies.npy):
    one chain whose draws are the samples; sample_stats log_weight, log_q,
    reduced_energy and lp (-u), those present."""
    import os
    import numpy as np
    x = np.load(os.path.join(run_dir, "samples.npy"))
    stats = {}
    for name, key in (("log_weights", "log_weight"), ("log_q", "log_q"), ("reduced_energies", "reduced_energy")):
        path = os.path.join(run_dir, name + ".npy")
        if os.path.exists(path):
            stats[key] = np.load(path)[None, :]
    if "reduced_energy" in stats:
        stats["lp"] = -stats["reduced_energy"]
    return {"x": x[None, :, :]}, stats
