"""What a study cell runs: one function per ``experiment`` of a study file.

Each takes (cell, problem, topology, algorithm, seed) and returns (tidy rows, extra metadata); the
analyses of :mod:`minmaxlab.claims` read those rows and never run anything themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from minmaxlab.errors import ConfigError


def exp_trajectory(cell, prob, topo, alg, seed):
    from minmaxlab.simulate import run

    tr = run(prob, topo, alg, iterations=cell["iterations"], seed=seed, record=cell["record"],
             every_iteration=cell["every_iteration"], record_iterates=cell["record_iterates"],
             z0=cell["problem"].get("z0"))
    return tr.to_frame(), {"status": tr.status, "diverged_at": tr.diverged_at}


def _local_F(prob, Z):
    return np.array([prob.F_i(i, Z[i]) for i in range(prob.workers)])


def exp_mean_dynamics(cell, prob, topo, alg, seed):
    """C1: after every iteration k, compare the network averages with one OSG step driven by the
    mean of the local gradients: zbar^k = xbar^{k-1} - eta gbar(z^{k-1}), xbar^k = xbar^{k-1} -
    eta gbar(z^k). Runs K+1 trajectories of lengths 0..K (exact oracle)."""
    from minmaxlab.simulate import run

    if prob.noise.kind != "none":
        raise ConfigError("mean_dynamics needs the exact oracle (no noise)")
    eta = alg.eta_vector(prob.dim, prob.dim_u)
    xs, zs = [], []
    for k in range(cell["iterations"] + 1):
        tr = run(prob, topo, alg, iterations=k, seed=seed, record=[0, k] if k else [0])
        xs.append(tr.final_x)
        zs.append(tr.final_z)
    rows = []
    for k in range(1, len(xs)):
        xbar = xs[k - 1].mean(axis=0)
        gprev = _local_F(prob, zs[k - 1]).mean(axis=0)
        gnew = _local_F(prob, zs[k]).mean(axis=0)
        scale = 1.0 + np.max(np.abs(xbar))
        dz = np.max(np.abs(zs[k].mean(axis=0) - (xbar - eta * gprev))) / scale
        dx = np.max(np.abs(xs[k].mean(axis=0) - (xbar - eta * gnew))) / scale
        cons = float(np.mean(np.sum((zs[k] - zs[k].mean(axis=0)) ** 2, axis=1)))
        rows.append({"iteration": k, "dev_z": dz, "dev_x": dx, "consensus_z": cons,
                     "status": "ok"})
    return pd.DataFrame(rows), {}


def exp_limits(cell, prob, topo, alg, seed):
    """C7: DPOSG on the cell's topology against CPOSG (M workers), and DPOSG with one worker
    against OSG, on the same problem, seed and start; the largest difference of the iterates along
    the trajectory. The claim's topology is ``complete``, taken as the exact averaging matrix J
    (Metropolis weights on the complete graph equal J only up to rounding); any other topology
    (W != J) is the negative control."""
    import minmaxlab as mml
    from minmaxlab.config import build_problem
    from minmaxlab.simulate import default_start, run

    K = cell["iterations"]
    M = prob.workers
    z0 = default_start(prob)
    eta = alg.eta
    kw = dict(iterations=K, seed=seed, record="all", z0=z0, record_iterates=True)
    if topo.name == "complete" and M > 1:
        topo = mml.Topology.from_matrix(np.full((M, M), 1.0 / M))
    rounds = max(alg.params().get("rounds", 1), 1)
    d1 = run(prob, topo, mml.DPOSG(eta=eta, rounds=rounds), **kw)
    c1 = run(prob, topo, mml.CPOSG(eta=eta), **kw)
    one = build_problem({**cell["problem"], "workers": 1})
    ring1 = mml.topology("ring", 1)
    d2 = run(one, ring1, mml.DPOSG(eta=eta, rounds=rounds), **kw)
    o2 = run(one, ring1, mml.OSG(eta=eta), **kw)
    cols = [f"zbar_{c}" for c in range(prob.dim)]
    a, b = d1.to_frame(), c1.to_frame()
    e, f = d2.to_frame(), o2.to_frame()
    df = pd.DataFrame({
        "iteration": a.iteration,
        "diff_J_vs_cposg": np.max(np.abs(a[cols].to_numpy() - b[cols].to_numpy()), axis=1),
        "diff_M1_vs_osg": np.max(np.abs(e[cols].to_numpy() - f[cols].to_numpy()), axis=1),
        "stationarity_dposg_J": a.stationarity_local,
        "stationarity_cposg": b.stationarity_local,
        "status": "ok",
    })
    final = max(float(np.max(np.abs(d1.final_z - c1.final_z))),
                float(np.max(np.abs(d2.final_z - o2.final_z))))
    return df, {"final_max_diff": final}


def exp_gan(cell, prob, topo, alg, seed):
    """A GAN run: the trajectory's metric columns plus, at every recorded iteration, the quality of
    the network-average generator and of worker 0's (modes, high-quality rate, KL, JSD for the
    mixtures; score, Frechet distance, classes for digits); generated samples are kept as arrays."""
    from minmaxlab.gan import evaluate
    from minmaxlab.simulate import run

    tr = run(prob, topo, alg, iterations=cell["iterations"], seed=seed, record=cell["record"],
             every_iteration=cell["every_iteration"], record_iterates=True)
    df = tr.to_frame()
    zcols = [f"zbar_{c}" for c in range(prob.dim)]
    Zs = df[zcols].to_numpy(dtype=float)
    df = df.drop(columns=zcols)
    rows, samples = [], {}
    for it, z in zip(df["iteration"], Zs, strict=True):
        m = evaluate(prob, z, n=2000, seed=0) if np.all(np.isfinite(z)) else {}
        rows.append({key: v for key, v in m.items() if not isinstance(v, list)})
        if np.all(np.isfinite(z)):
            samples[f"samples_{int(it)}"] = prob.generate(z, 1000 if prob.dim_u < 20000 else 64, 1)
    last = tr.final_z[0]
    m0 = evaluate(prob, last, n=2000, seed=0) if np.all(np.isfinite(last)) else {}
    metrics = pd.DataFrame(rows)
    for col in metrics.columns:
        df[col] = metrics[col].to_numpy()
    df["dataset"] = prob.dataset
    df["split"] = prob.params["split"]
    for key, v in m0.items():
        if not isinstance(v, list):
            df[f"worker0_{key}"] = np.nan
            df.loc[df.index[-1], f"worker0_{key}"] = v
    return df, {"status": tr.status, "arrays": samples}


def exp_data(cell, prob, topo, alg, seed):
    """A run of a data-driven family: the trajectory's metric columns plus, at every recorded
    iteration, the network average's held-out quality: ``accuracy`` and ``worst_group_loss`` for
    the classification families, ``test_loss`` (the robust loss of the model on the held-out
    split, when there is one) for robust regression; and ``objective`` (f at zbar, training data)."""
    from minmaxlab.problems.data import GroupLogistic, accuracy
    from minmaxlab.simulate import run

    tr = run(prob, topo, alg, iterations=cell["iterations"], seed=seed, record=cell["record"],
             every_iteration=cell["every_iteration"], record_iterates=True,
             z0=cell["problem"].get("z0"))
    df = tr.to_frame()
    zcols = [f"zbar_{c}" for c in range(prob.dim)]
    Zs = df[zcols].to_numpy(dtype=float)
    df = df.drop(columns=zcols)
    rows = []
    for z in Zs:
        m = {}
        if np.all(np.isfinite(z)):
            m["objective"] = prob.objective(z)
            if isinstance(prob, GroupLogistic):
                m["accuracy"] = accuracy(prob, z)
                m["worst_group_loss"] = float(np.nanmax(prob.group_losses(z)))
            else:
                m["test_loss"] = prob.test_loss(z)
        rows.append(m)
    metrics = pd.DataFrame(rows)
    for col in metrics.columns:
        df[col] = metrics[col].to_numpy()
    df["split"] = prob.params.get("split")
    return df, {"status": tr.status, "diverged_at": tr.diverged_at}


EXPERIMENT_FUNCTIONS = {
    "data": exp_data,
    "gan": exp_gan,
    "trajectory": exp_trajectory,
    "mean_dynamics": exp_mean_dynamics,
    "limits": exp_limits,
}
