"""Experiments (what a study cell runs) and analyses (how a claim gets its number and verdict).

Each analysis reads the study's tidy table, computes the measured quantity of one claim of
ALGORITHM.md (C1..C8, plus the wall-clock comparison of the cost model), and returns verdict rows
(:class:`minmaxlab.rates.Verdict`) and a small ``points`` table from which its figure is drawn.
Predicted values and tolerances come from the study file and are never adjusted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from minmaxlab import rates
from minmaxlab.errors import ConfigError

# ---------------------------------------------------------------------------- experiments


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
    """C7: DPOSG with W = J against CPOSG (M workers), and DPOSG with one worker against OSG, on the
    same problem, seed and start; the largest difference of the iterates along the trajectory."""
    import minmaxlab as mml
    from minmaxlab.simulate import default_start, run

    K = cell["iterations"]
    M = prob.workers
    z0 = default_start(prob)
    eta = alg.eta
    kw = dict(iterations=K, seed=seed, record="all", z0=z0, record_iterates=True)
    J = mml.Topology.from_matrix(np.full((M, M), 1.0 / M)) if M > 1 else mml.topology("ring", 1)
    d1 = run(prob, J, mml.DPOSG(eta=eta, rounds=max(alg.params().get("rounds", 1), 1)), **kw)
    c1 = run(prob, J, mml.CPOSG(eta=eta), **kw)
    from minmaxlab.config import build_problem

    one = build_problem({**cell["problem"], "workers": 1})
    ring1 = mml.topology("ring", 1)
    d2 = run(one, ring1, mml.DPOSG(eta=eta, rounds=2), **kw)
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
    from minmaxlab.problems.data import _GroupLogistic, accuracy
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
            if isinstance(prob, _GroupLogistic):
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

# ---------------------------------------------------------------------------- analyses


@dataclass(frozen=True)
class Analysis:
    name: str
    required: tuple
    fn: object
    doc: str = ""

    def validate(self, path, k, c):
        missing = [r for r in self.required if r not in c]
        if missing:
            raise ConfigError(f"{path}: claims[{k}] ({self.name}) is missing {missing}")
        tol = c.get("tolerance")
        if tol is not None and (not isinstance(tol, (int, float)) or tol < 0):
            raise ConfigError(f"{path}: claims[{k}].tolerance must be a number >= 0, got {tol!r}")

    def run(self, table, c, study):
        if table is None or len(table) == 0:
            return [rates.Verdict(c["claim"], study.name, "-", math.nan, math.nan, math.nan,
                                  "inconclusive", "no finished runs")], pd.DataFrame()
        return self.fn(table, c, study)


def _ok(df):
    return df[df["status"] == "ok"] if "status" in df else df


def _setting(study, extra=""):
    return f"{study.name}{'' if not extra else ': ' + extra}"


def an_mean_dynamics(table, c, study):
    thr = float(c.get("threshold", 1e-12))
    worst = float(np.nanmax(np.maximum(table["dev_z"], table["dev_x"])))
    n = table["run_id"].nunique()
    tops = ", ".join(sorted(table["topology"].unique()))
    v = rates.check_at_most(c["claim"], _setting(study, f"{n} runs on {tops}"), worst, thr,
                            f"averages follow OSG on mean gradients, max rel. deviation <= {thr:g}")
    pts = table[["iteration", "dev_z", "dev_x", "topology", "workers", "seed", "problem"]]
    return [v], pts


def _steady(df, metric, fraction):
    """Mean of ``metric`` over the last ``fraction`` of each run's recorded iterations."""
    out = []
    for rid, g in df.groupby("run_id"):
        g = g.sort_values("iteration")
        kmax = g["iteration"].max()
        tail = g[g["iteration"] >= (1 - fraction) * kmax]
        out.append({"run_id": rid, "value": float(tail[metric].mean())})
    return pd.DataFrame(out)


def _with_steady(df, metric, fraction, keys):
    st = _steady(df, metric, fraction)
    first = df.drop_duplicates("run_id")[["run_id", *keys]]
    return first.merge(st, on="run_id")


def an_consensus(table, c, study):
    """C2: (a) every gossip contracts the disagreement by rho^t (measured on random states for
    each topology and t); (b) the steady-state consensus error falls in t at least as fast as
    rho^(2t): fitted slope of log(error) vs t over the whole t grid <= 2 log rho; (c) and close to
    2 log rho (within ``tolerance``, relative) for large t, where the slowest eigenvector
    dominates: the t with rho^(2t) <= 0.1 (and >= 1e-12, above rounding)."""
    tol = float(c["tolerance"])
    frac = float(c.get("fraction", 0.5))
    df = _ok(table)
    df = df[df["algorithm"] == c.get("algorithm", "dposg")]
    pts = _with_steady(df, "consensus_z", frac, ["topology", "workers", "rounds", "rho", "seed"])
    verdicts = []
    rng = np.random.default_rng(0)
    worst = 0.0
    from minmaxlab.config import build_topology
    from minmaxlab.study import _as_table

    specs = [_as_table(x, "topology") for x in study.grid["topologies"]]
    for spec in specs:
        for M in sorted(pts["workers"].unique()):
            worst = max(worst, _max_contraction_ratio(build_topology(spec, int(M)), rng))
    verdicts.append(rates.check_at_most(
        c["claim"], _setting(study, "every gossip, random states, t = 1..8"), worst, 1.0 + 1e-9,
        "||W^t Y - 1 ybar|| / (rho^t ||Y - 1 ybar||) <= 1"))
    for (name, M), g in pts.groupby(["topology", "workers"]):
        g = g.rename(columns={"value": "consensus"})
        rho = float(g["rho"].iloc[0])
        pred = 2 * math.log(rho)
        setting = _setting(study, f"{name} M={M}, rho={rho:.3f}")
        fit = rates.fit_slope(g, "rounds", "consensus", group="seed", log_x=False)
        v = rates.check_slope(c["claim"], setting + ", all t", fit, pred, 0.0, mode="at_most")
        v.predicted = f"slope of log err vs t <= 2 log rho = {pred:.3f}"
        verdicts.append(v)
        t_lo = math.log(10) / (2 * math.log(1 / rho))
        t_hi = math.log(1e12) / (2 * math.log(1 / rho))
        big = g[(g["rounds"] >= t_lo) & (g["rounds"] <= t_hi)]
        if big["rounds"].nunique() < 2:
            verdicts.append(rates.Verdict(
                c["claim"], setting + ", large t", f"slope -> 2 log rho = {pred:.3f}", math.nan,
                math.nan, math.nan, "inconclusive",
                f"fewer than 2 grid values of t in [{t_lo:.1f}, {t_hi:.1f}] (rho^2t in [1e-12, 0.1])"))
            continue
        fit = rates.fit_slope(big, "rounds", "consensus", group="seed", log_x=False)
        v = rates.check_slope(c["claim"], setting + f", large t ({int(big['rounds'].min())}.."
                                                    f"{int(big['rounds'].max())})", fit, pred,
                              tol * abs(pred), mode="close")
        v.predicted = f"slope = 2 log rho = {pred:.3f} (+/- {tol:.0%})"
        verdicts.append(v)
    return verdicts, pts


def _max_contraction_ratio(topo, rng):
    worst = 0.0
    for t in range(1, 9):
        for _ in range(20):
            Y = rng.standard_normal((topo.workers, 3))
            before = np.linalg.norm(Y - Y.mean(axis=0))
            after = topo.mix(Y, t)
            ratio = np.linalg.norm(after - after.mean(axis=0)) / (topo.rho**t * before)
            worst = max(worst, float(ratio))
    return worst


def _osg_bound(df, eta):
    """8 ||x0 - x*||^2 / (eta^2 K), the deterministic part of the OSG bound (ICLR 2020)."""
    d0 = df.sort_values("iteration")["dist_to_solution"].iloc[0]
    k = df["iteration"].to_numpy(dtype=float)
    with np.errstate(divide="ignore"):
        return 8.0 * d0 / (eta**2 * k)


def an_rate(table, c, study):
    """C3: sigma = 0, MVI problem: the running average of ||(1/M) sum F(z_i)||^2 decays like 1/K
    (fitted log-log slope <= -1 + tol) and stays below the OSG bound."""
    tol = float(c["tolerance"])
    lo, hi = c["window"]
    metric = c.get("metric", "avg_stationarity_local")
    verdicts, pts = [], []
    df = _ok(table)
    for (prob, label), g in df.groupby(["problem", "label"]):
        fit = rates.fit_slope(g, "iteration", metric, group="seed", window=(lo, hi))
        setting = _setting(study, f"{prob}, {g['topology'].iloc[0]} M={g['workers'].iloc[0]}, {label}")
        v = rates.check_slope(c["claim"], setting, fit, float(c.get("predicted", -1.0)), tol,
                              mode="at_most")
        verdicts.append(v)
        med = g.groupby("iteration")[metric].median().reset_index()
        q = g.groupby("iteration")[metric].quantile([0.1, 0.9]).unstack()
        med["lo"] = q[0.1].to_numpy()
        med["hi"] = q[0.9].to_numpy()
        med["problem"], med["label"] = prob, label
        if "dist_to_solution" in g and c.get("bound", True):
            first = g[g["seed"] == g["seed"].min()]
            bound = _osg_bound(first, float(g["eta"].iloc[0]))
            b = pd.Series(bound, index=first["iteration"].to_numpy())
            med["osg_bound"] = b.reindex(med["iteration"]).to_numpy()
            sel = med["iteration"] > 0
            verdicts.append(rates.check_bound(c["claim"], setting + " vs OSG bound",
                                              med.loc[sel, metric].to_numpy(),
                                              med.loc[sel, "osg_bound"].to_numpy()))
        pts.append(med)
    return verdicts, pd.concat(pts, ignore_index=True)


def an_noise_floor(table, c, study):
    """C4: with fixed eta the stationarity levels off at a value proportional to sigma^2/(m M):
    slope -1 of log floor vs log(m M)."""
    tol = float(c["tolerance"])
    frac = float(c.get("fraction", 0.5))
    metric = c.get("metric", "stationarity_local")
    df = _ok(table)
    verdicts, out = [], []
    for (prob, alg), g in df.groupby(["problem", "algorithm"]):
        pts = _with_steady(g, metric, frac, ["workers", "batch", "sigma", "seed", "topology", "label"])
        pts["mM"] = pts["batch"] * pts["workers"]
        pts["problem"], pts["algorithm"] = prob, alg
        fit = rates.fit_slope(pts.rename(columns={"value": "floor"}), "mM", "floor", group="seed")
        setting = _setting(study, f"{prob}, {pts['topology'].iloc[0]}, {alg}")
        verdicts.append(rates.check_slope(c["claim"], setting, fit, -1.0, tol, mode="close"))
        out.append(pts)
    return verdicts, pd.concat(out, ignore_index=True)


def _iterations_to_eps(g, metric, eps, smooth):
    """First recorded iteration where the rolling median (over ``smooth`` records) of ``metric``
    is <= eps; nan if never."""
    g = g.sort_values("iteration")
    y = g[metric].rolling(smooth, center=True, min_periods=1).median()
    return rates.first_crossing(g["iteration"].to_numpy(), y.to_numpy(), eps)


def an_speedup(table, c, study):
    """C5: per-worker batch fixed; for each M the best step size of the grid; iterations until the
    stationarity (a rolling median over ``smooth`` recorded points, to see through the noise)
    falls below eps scale like 1/M (log-log slope -1)."""
    tol = float(c["tolerance"])
    eps = float(c["eps"])
    metric = c.get("metric", "stationarity_local")
    smooth = int(c.get("smooth", 9))
    df = _ok(table)
    rows = []
    for (M, eta, seed), g in df.groupby(["workers", "eta", "seed"]):
        k = _iterations_to_eps(g, metric, eps, smooth)
        rows.append({"workers": M, "eta": eta, "seed": seed, "iterations_to_eps": k})
    per = pd.DataFrame(rows)
    best = per.groupby(["workers", "seed"])["iterations_to_eps"].min().reset_index()
    best["problem"] = df["problem"].iloc[0]
    arg = per.dropna().sort_values("iterations_to_eps").drop_duplicates(["workers", "seed"])
    best = best.merge(arg[["workers", "seed", "eta"]], on=["workers", "seed"], how="left")
    fit_df = best.dropna()
    if fit_df["workers"].nunique() < 2:
        return [rates.Verdict(c["claim"], _setting(study), "slope -1", math.nan, math.nan, math.nan,
                              "inconclusive", f"eps = {eps:g} reached for fewer than 2 worker counts")], best
    fit = rates.fit_slope(fit_df, "workers", "iterations_to_eps", group="seed")
    setting = _setting(study, f"{best['problem'].iloc[0]}, eps={eps:g}, best eta per M")
    v = rates.check_slope(c["claim"], setting, fit, -1.0, tol, mode="close")
    return [v], best


def an_rounds_needed(table, c, study):
    """C6: the smallest t whose accuracy is within (1 + delta) of CPOSG's grows with 1/(1 - rho):
    ordered complete < expander < torus < ring; and the eps-schedule reaches CPOSG's accuracy."""
    delta = float(c["delta"])
    frac = float(c.get("fraction", 0.5))
    metric = c.get("metric", "stationarity_local")
    df = _ok(table)
    pts = _with_steady(df, metric, frac, ["topology", "workers", "rho", "rounds", "algorithm", "label",
                                          "seed"])
    ref = pts[pts["algorithm"] == "cposg"]["value"].median()
    rows = []
    dp = pts[(pts["algorithm"] == "dposg") & (~pts["label"].str.contains("schedule"))]
    for name, g in dp.groupby("topology"):
        med = g.groupby("rounds")["value"].median().sort_index()
        ok = med[med <= (1 + delta) * ref]
        rho = float(g["rho"].iloc[0])
        rows.append({"topology": name, "rho": rho, "gap_inv": 1 / (1 - rho) if rho < 1 else np.inf,
                     "t_needed": float(ok.index.min()) if len(ok) else np.nan,
                     "t_max": float(med.index.max()),
                     "t_theory": math.ceil(math.log(1 / float(c["eps"])) / math.log(1 / rho))
                     if rho > 0 else 0, "cposg_level": ref})
    res = pd.DataFrame(rows).sort_values("gap_inv")
    verdicts = [rates.check_ordering(
        c["claim"], _setting(study, "t needed vs 1/(1-rho)"), list(res["topology"]),
        [x if np.isfinite(x) else 1e9 for x in res["t_needed"]], increasing=True)]
    verdicts[0].predicted = "t needed grows with 1/(1-rho): " + " <= ".join(res["topology"])
    sched = pts[pts["label"].str.contains("schedule=eps")]
    for label, g in sched.groupby("label"):
        eps_s = label.split("eps=")[-1].rstrip("]")
        ratio = g.groupby("topology")["value"].median() / ref
        worst = float(ratio.max())
        verdicts.append(rates.check_at_most(
            c["claim"], _setting(study, f"t = ceil(log(1/eps)/log(1/rho)), eps={eps_s}, worst of "
                                        f"{len(ratio)} topologies ({ratio.idxmax()})"),
            worst, 1 + delta, f"accuracy / CPOSG's <= 1 + {delta:g}"))
    return verdicts, res


def an_limits(table, c, study):
    thr = float(c.get("threshold", 1e-12))
    worst = float(np.nanmax(np.maximum(table["diff_J_vs_cposg"], table["diff_M1_vs_osg"])))
    v = rates.check_at_most(c["claim"], _setting(study, f"{table['problem'].iloc[0]}, "
                                                        f"{table['iteration'].max()} iterations"),
                            worst, thr, f"W = J gives CPOSG and M = 1 gives OSG, max |dz| <= {thr:g}")
    return [v], table[["iteration", "diff_J_vs_cposg", "diff_M1_vs_osg", "seed", "problem"]]


def an_non_convergence(table, c, study):
    """C8: where MVI fails, DPOSG and OSG need not converge: the stationarity at the average stays
    above ``level`` over the last part of the run (a limit cycle), while the contrast problems
    (MVI or mild weak MVI) converge below ``level``."""
    level = float(c["level"])
    frac = float(c.get("fraction", 0.5))
    expect = c["expect"]
    df = table
    pts = _with_steady(df, "stationarity_avg", frac, ["problem", "label", "topology", "seed"])
    minima = []
    for rid, g in df.groupby("run_id"):
        g = g.sort_values("iteration")
        tail = g[g["iteration"] >= (1 - frac) * g["iteration"].max()]
        minima.append({"run_id": rid, "tail_min": float(tail["stationarity_avg"].min()),
                       "diverged": bool((g["status"] == "diverged").any())})
    pts = pts.merge(pd.DataFrame(minima), on="run_id")
    verdicts = []
    for (prob, label), g in pts.groupby(["problem", "label"]):
        want = expect.get(prob)
        if want is None:
            continue
        m = float(g["tail_min"].median())
        setting = _setting(study, f"{prob}, {label}")
        if want == "cycle":
            verdicts.append(rates.check_at_least(c["claim"], setting, m, level,
                                                 f"no convergence: min ||F(zbar)||^2 stays >= {level:g}"))
        else:
            verdicts.append(rates.check_at_most(c["claim"], setting, m, level,
                                                f"contrast: converges, ||F(zbar)||^2 < {level:g}"))
    return verdicts, pts


def an_wallclock(table, c, study):
    """Modelled time to reach eps (cost model) for DPOSG and CPOSG over a latency x bandwidth
    sweep; where does DPOSG overtake CPOSG."""
    from minmaxlab.costmodel import CostModel

    eps = float(c["eps"])
    metric = c.get("metric", "stationarity_local")
    smooth = int(c.get("smooth", 9))
    df = _ok(table)
    k_eps = {}
    for label, g in df.groupby("label"):
        ks = [_iterations_to_eps(gs, metric, eps, smooth) for _, gs in g.groupby("seed")]
        k_eps[label] = (float(np.nanmedian(ks)) if np.isfinite(ks).any() else np.nan,
                        g["algorithm"].iloc[0], int(g["rounds"].iloc[0]), int(g["workers"].iloc[0]),
                        int(g["dim"].iloc[0]))
    import minmaxlab as mml

    first = df.iloc[0]
    deg = mml.topology(first["topology"], int(first["workers"])).max_degree
    alphas = np.logspace(*c.get("alpha_range", [-6, -1]), 21)
    betas = np.logspace(*c.get("beta_range", [6, 10]), 17)
    rows = []
    for a in alphas:
        for b in betas:
            cm = CostModel(alpha=a, beta=b, grad_time=float(c.get("grad_time", 1e-3)))
            for label, (k, alg, t, M, d) in k_eps.items():
                d = int(c.get("model_floats", d))
                calls = 2 if alg == "deg" else 1
                rows.append({"alpha": a, "beta": b, "label": label, "algorithm": alg,
                             "time_to_eps": k * cm.iteration_time(alg, d, M, deg, t, calls),
                             "iterations_to_eps": k})
    pts = pd.DataFrame(rows)
    reached = pts.dropna(subset=["time_to_eps"])
    best = reached.loc[reached.groupby(["alpha", "beta", "algorithm"])["time_to_eps"].idxmin()]
    wide = best.pivot_table(index=["alpha", "beta"], columns="algorithm", values="time_to_eps")
    if "dposg" not in wide or "cposg" not in wide:
        return [rates.Verdict(c["claim"], _setting(study), "-", math.nan, math.nan, math.nan,
                              "inconclusive", "needs dposg and cposg runs that reach eps")], pts
    faster = (wide["dposg"] < wide["cposg"]).to_numpy()
    frac = float(np.mean(faster))
    hi_lat = wide.reset_index()
    hi_lat = hi_lat[hi_lat["alpha"] == hi_lat["alpha"].max()]
    wins_high = bool((hi_lat["dposg"] < hi_lat["cposg"]).any())
    v = rates.Verdict(
        c["claim"], _setting(study, f"M={first['workers']} {first['topology']}, eps={eps:g}"),
        "DPOSG overtakes CPOSG at high latency / low bandwidth", frac, math.nan, math.nan,
        "pass" if wins_high else "fail",
        f"DPOSG faster on {frac:.0%} of the (alpha, beta) grid; at alpha = {alphas[-1]:.0e} s it "
        f"{'wins' if wins_high else 'never wins'}")
    return [v], pts


def an_gan(table, c, study):
    """GAN quality at the end of each run, as rows that read like
    'GAN 8gaussians dpoadam ring: modes 8/8, high-quality 87%' (mixtures) or with the score and
    Frechet distance (digits); pass when the thresholds of the study file are met."""
    verdicts, pts = [], []
    for _, g in table.groupby("run_id"):
        last = g.sort_values("iteration").iloc[-1]
        ds = str(last.get("dataset", last.get("problem", "gan")))
        split = f", {last['split']}" if "split" in g else ""
        alg_t = f"{last['algorithm']} t={int(last['rounds'])}" if last["rounds"] else str(last["algorithm"])
        where = f"{ds}{split.replace(', ', ' ')} {alg_t} {last['topology']}"
        setting_base = f"{ds}{split}, {last['topology']} M={int(last['workers'])}, {last['label']}"
        if "modes" in g:
            n_modes = int(last["n_modes"])
            modes = int(last["modes"])
            hq = float(last["high_quality"])
            ok = modes >= int(c.get("min_modes", n_modes)) and hq >= float(c.get("min_high_quality", 0.8))
            verdicts.append(rates.Verdict(
                c["claim"], _setting(study, setting_base),
                f"modes >= {c.get('min_modes', n_modes)}/{n_modes}, high quality >= "
                f"{float(c.get('min_high_quality', 0.8)):.0%}", hq, math.nan, math.nan,
                "pass" if ok else "fail",
                f"GAN {where}: modes {modes}/{n_modes}, "
                f"high-quality {hq:.0%}, KL {float(last['kl']):.3f} after {int(last['iteration'])} it."))
        elif "frechet" in g:
            fd = float(last["frechet"])
            ok = fd <= float(c.get("max_frechet", 1e9))
            verdicts.append(rates.Verdict(
                c["claim"], _setting(study, setting_base), f"Frechet <= {c.get('max_frechet')}", fd,
                math.nan, math.nan, "pass" if ok else "fail",
                f"GAN {where}: score {float(last['score']):.2f}, "
                f"Frechet {fd:.2f}, classes {int(last['classes_covered'])}/10"))
        elif "sample_to_data" in g:
            d1, d2 = float(last["sample_to_data"]), float(last["data_to_sample"])
            thr = float(c.get("max_distance", 0.1))
            verdicts.append(rates.Verdict(
                c["claim"], _setting(study, setting_base), f"both mean distances <= {thr:g}",
                max(d1, d2), math.nan, math.nan, "pass" if max(d1, d2) <= thr else "fail",
                f"GAN {where}: sample->data {d1:.3f}, "
                f"data->sample {d2:.3f}"))
        pts.append(g)
    return verdicts, pd.concat(pts, ignore_index=True) if pts else pd.DataFrame()


ANALYSES = {
    a.name: a
    for a in (
        Analysis("mean_dynamics", ("claim",), an_mean_dynamics),
        Analysis("consensus", ("claim", "tolerance"), an_consensus),
        Analysis("rate", ("claim", "tolerance", "window"), an_rate),
        Analysis("noise_floor", ("claim", "tolerance"), an_noise_floor),
        Analysis("speedup", ("claim", "tolerance", "eps"), an_speedup),
        Analysis("rounds_needed", ("claim", "delta", "eps"), an_rounds_needed),
        Analysis("limits", ("claim",), an_limits),
        Analysis("non_convergence", ("claim", "level", "expect"), an_non_convergence),
        Analysis("wallclock", ("claim", "eps"), an_wallclock),
        Analysis("gan", ("claim",), an_gan),
    )
}
