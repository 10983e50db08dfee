"""Run configurations shared by tests/test_mpi.py (the simulator side) and tests/mpi_driver.py (the
MPI side, launched under mpiexec). A case is plain data (JSON): run-file sections as in
minmaxlab/config.py, plus "kwargs" for the run and "exact" (False where the results may differ in
the last bits, see the Numerics paragraph of minmaxlab/mpi.py)."""

from __future__ import annotations

import functools

import numpy as np

from minmaxlab.config import build_algorithm, build_problem, build_topology

WORKERS = 8
ALGORITHMS = [
    {"name": "dposg", "eta": 0.05, "rounds": 1},
    {"name": "dposg", "eta": 0.05, "rounds": 3},
    {"name": "dposg_single", "eta": 0.05, "rounds": 2},
    {"name": "cposg", "eta": 0.05},
    {"name": "dsgda", "eta": 0.05, "rounds": 2},
    {"name": "deg", "eta": 0.05, "rounds": 2},
    {"name": "dpoadam", "eta": 0.01, "rounds": 2},
    {"name": "cpoadam", "eta": 0.01},
]
# the methods that came after DPOSG: each on every topology, with one of the noises in turn
LATER = [
    {"name": "gt_da", "eta": 0.05, "rounds": 2},
    {"name": "dposg_gt", "eta": 0.05, "rounds": 2},
    {"name": "deg_mc", "eta": 0.05, "rounds": 3},
    {"name": "dposg", "eta": 0.05, "rounds": 4, "gossip": "chebyshev"},
    {"name": "local_sgda", "eta": 0.05, "local_steps": 3},
    {"name": "local_osgda", "eta": 0.05, "local_steps": 4},
    {"name": "dm_hsgd", "eta": 0.05, "beta": 0.3},
    {"name": "dm_hsgd", "eta": 0.05, "beta": 0.3, "same_sample": False},
    {"name": "dposg", "eta": 0.05, "rounds": 2, "compression": "top_k", "keep": 0.3,
     "consensus_step": 0.5},
    {"name": "dposg", "eta": 0.05, "rounds": 2, "compression": "quantize", "levels": 2,
     "consensus_step": 0.5},
    {"name": "dpoadam", "eta": 0.01, "rounds": 2, "moments": "gossiped_gradient", "decay": 0.5},
]
NOISES = [None, {"sigma": 0.2, "batch": 2}, {"sigma": 0.3, "kind": "finite_sum", "samples": 12, "batch": 3}]
# per-worker coupling matrices (d = 20: vectorized gossip rows), d = 2 (scalar gossip rows),
# per-worker constant terms
PROBLEMS = ["minty_bowl_hetero", "forsaken", "rotation_hetero"]
TOPOLOGIES = ["ring", "torus", "complete"]


def _case(problem, topology, algorithm, iterations=60, exact=True, **kwargs):
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("record", 12)
    kwargs.setdefault("every_iteration", False)
    return {"problem": problem, "topology": topology, "algorithm": algorithm,
            "kwargs": {"iterations": iterations, **kwargs}, "exact": exact}


def cases() -> list[dict]:
    """Every algorithm on ring, torus and complete graphs with exact, Gaussian and finite-sum
    oracles, and the special cases (time-varying graphs, constraints, user operators, the BLAS
    path, per-iteration metrics, divergence, recorded iterates, start per worker)."""
    out = []
    n = 0
    for topo in TOPOLOGIES:
        for j, alg in enumerate(ALGORITHMS + LATER):
            for q, noise in enumerate(NOISES):
                prob = {"name": PROBLEMS[n % len(PROBLEMS)], "workers": WORKERS}
                if noise:
                    prob["noise"] = noise
                # a later method: one of the noises on each topology, in turn
                if j < len(ALGORITHMS) or q == (j + TOPOLOGIES.index(topo)) % len(NOISES):
                    out.append(_case(prob, {"name": topo}, alg))
                n += 1
    bowl = {"name": "minty_bowl_hetero", "workers": WORKERS, "noise": {"sigma": 0.2, "batch": 2}}
    tv = {"name": "one_peer_exponential"}
    out += [
        _case(bowl, tv, {"name": "dposg", "eta": 0.05, "rounds": 3}),
        _case(bowl, tv, {"name": "deg", "eta": 0.05, "rounds": 2}),
        _case(bowl, {"name": "ring"}, {"name": "dposg", "eta": 0.05, "rounds": 1, "schedule": "log"}),
        _case({"name": "bilinear_offset", "workers": WORKERS, "constraints": {"u": {"ball": 0.5},
                                                                            "v": {"box": [-0.2, 0.2]}}},
              {"name": "ring"}, {"name": "dposg", "eta": 0.1, "rounds": 2}),
        _case({"name": "covariance_wgan_hetero", "workers": WORKERS,
               "noise": {"kind": "finite_sum", "batch": 3}}, {"name": "torus"},
              {"name": "dposg", "eta": 0.02, "rounds": 2}),
        _case({"user": "shifted_rotation", "workers": WORKERS, "noise": {"sigma": 0.1}},
              {"name": "ring"}, {"name": "dposg", "eta": 0.1, "rounds": 2}),
        _case({"user": "shifted_rotation", "workers": WORKERS}, {"name": "complete"},
              {"name": "cposg", "eta": 0.1}),
        # one shared coupling matrix, d = 40: the operator's BLAS path
        _case({"name": "minty_bowl_log", "workers": WORKERS, "noise": {"sigma": 0.1}}, {"name": "ring"},
              {"name": "dposg", "eta": 0.05, "rounds": 2}, exact=False),
        # running averages and minima over every iteration
        _case(bowl, {"name": "ring"}, {"name": "dposg", "eta": 0.05, "rounds": 2}, every_iteration=True),
        _case(bowl, {"name": "complete"}, {"name": "cposg", "eta": 0.05}, every_iteration=True,
              record_iterates=True),
        # divergence: at the same iteration with every_iteration, at a record without
        _case({"name": "bilinear", "workers": WORKERS}, {"name": "ring"}, {"name": "dsgda", "eta": 3.0},
              iterations=400, every_iteration=True),
        _case({"name": "bilinear", "workers": WORKERS}, {"name": "ring"}, {"name": "dsgda", "eta": 3.0},
              iterations=400),
        _case(dict(bowl, z0=np.linspace(-0.5, 0.5, WORKERS * 20).reshape(WORKERS, 20).tolist()),
              {"name": "torus"}, {"name": "dpoadam", "eta": 0.01, "rounds": 1}, record="all",
              record_iterates=True),
        # the GAN: per-worker shards of unequal sizes (non-iid split), sampled mini-batches
        _case({"name": "gan", "workers": WORKERS, "params": {"hidden": 6, "latent": 2, "batch": 8,
                                                             "samples": 300, "split": "noniid",
                                                             "classes_per_worker": 3}},
              {"name": "ring"}, {"name": "dpoadam", "eta": 0.001, "rounds": 1}, iterations=20),
        _case({"name": "gan", "workers": WORKERS, "params": {"hidden": 6, "latent": 2, "batch": 8,
                                                             "samples": 300, "split": "noniid",
                                                             "classes_per_worker": 3, "pack": 2}},
              {"name": "torus"}, {"name": "dpoadam", "eta": 0.001, "rounds": 2, "decay": 0.7,
                                  "moments": "gossiped_gradient"}, iterations=20),
        _case({"name": "gan", "workers": WORKERS, "params": {"hidden": 6, "latent": 2, "batch": 8,
                                                             "samples": 300}},
              {"name": "complete"}, {"name": "cposg", "eta": 0.01}, iterations=20),
        # data-driven families: sampled mini-batches, default constraints (l1 + ball, simplex),
        # the gradient-mapping column; shards of unequal sizes (label split)
        _case({"name": "robust_regression", "workers": WORKERS,
               "params": {"samples": 30, "features": 5, "batch": 4, "split": "label"}},
              {"name": "ring"}, {"name": "dposg_single", "eta": 0.05, "rounds": 1}, iterations=40),
        _case({"name": "dro_logistic", "workers": WORKERS,
               "params": {"dataset": "wine", "groups": "label", "batch": 5, "split": "label"}},
              {"name": "torus"}, {"name": "dposg", "eta": 0.1, "rounds": 2}, iterations=40),
        # sparse storage: binary one-hot rows, and real-valued rows (values stored)
        _case({"name": "robust_regression", "workers": WORKERS,
               "params": {"dataset": "synthetic_onehot", "samples": 30, "features": 20, "batch": 4}},
              {"name": "ring"}, {"name": "dposg_single", "eta": 0.05, "rounds": 1}, iterations=40),
        _case({"name": "fair_classification", "workers": WORKERS,
               "params": {"dataset": "wine", "storage": "sparse", "batch": 5, "split": "label"}},
              {"name": "ring"}, {"name": "dposg", "eta": 0.1, "rounds": 1}, iterations=40),
    ]
    return out


@functools.cache
def _user_problem(workers: int):
    """One problem object per size, so that its operator's kernels are compiled once."""
    import minmaxlab as mml

    def op(i, z, out):  # a rotation plus a worker-dependent shift (so the worker index matters)
        s = 0.1 * (i - 3.5)
        out[0] = z[2] + 0.5 * z[0] + s
        out[1] = z[3] + 0.5 * z[1] - s
        out[2] = -z[0] + 0.5 * z[2] + 2 * s
        out[3] = -z[1] + 0.5 * z[3]

    return mml.Problem.from_operator(op, dim=4, workers=workers, L=1.2, box=(-2.0, 2.0),
                                     name="shifted_rotation")


def build(case: dict):
    """(problem, topology, algorithm, kwargs) of a case; kwargs go to mml.run / run_mpi."""
    sec = dict(case["problem"])
    kwargs = dict(case["kwargs"])
    z0 = sec.pop("z0", None)
    if "user" in sec:
        prob = _user_problem(sec["workers"])
        if "noise" in sec:
            prob = prob.with_noise(**sec["noise"])
    else:
        prob = build_problem(sec)
    if z0 is not None:
        kwargs["z0"] = np.asarray(z0, dtype=float)
    topo = build_topology(case["topology"], prob.workers)
    return prob, topo, build_algorithm(dict(case["algorithm"])), kwargs
