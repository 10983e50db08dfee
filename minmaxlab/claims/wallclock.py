"""Wall-clock (cost model of ALGORITHM.md): DPOSG reaches eps sooner than CPOSG where
communication is expensive: at high latency against a ring all-reduce, and at low bandwidth
against a parameter server.

Runs: heterogeneous workers with noise, where the methods need different iteration counts:
DPOSG over a few t, and CPOSG. Iterations to eps (rolling median over ``smooth`` records,
median over seeds) are measured; a method that never reaches eps takes infinite time. The time
to eps is iterations x the modelled time of one iteration, swept over latency alpha and
bandwidth beta for both CPOSG models. Checks: with the ring all-reduce, DPOSG (best t) is faster
than CPOSG at the largest latency of the sweep; with the parameter server, at the smallest
bandwidth. Measured: the time ratio DPOSG / CPOSG there (< 1 passes). Negative control: DPOSG's
single-exchange variant with t = 1, whose heterogeneity floor stays above eps.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, iterations_to_eps, setting
from minmaxlab.costmodel import CostModel

MODELS = {"ring": "ring all-reduce, largest latency and bandwidth",
          "server": "parameter server, smallest bandwidth and latency"}


def _iterations(df, metric, eps, smooth):
    out = {}
    for label, g in df.groupby("label"):
        ks = [iterations_to_eps(gs, metric, eps, smooth) for _, gs in g.groupby("seed")]
        k = float(np.median(ks)) if np.isfinite(ks).all() else math.inf
        out[label] = (k, g["algorithm"].iloc[0], int(g["rounds"].iloc[0]))
    return out


def analyse(table, spec, study):
    import json

    from minmaxlab.config import build_topology

    eps = float(spec["eps"])
    metric = spec.get("metric", "stationarity_workers")
    smooth = int(spec.get("smooth", 9))
    df = table
    first = df.iloc[0]
    M = int(first["workers"])
    deg = build_topology(json.loads(first["topology_spec"]), M).max_degree
    d = int(spec.get("model_floats", first["dim"]))
    k_eps = _iterations(df, metric, eps, smooth)
    alphas = np.logspace(*spec.get("alpha_range", [-6, -1]), 11)
    betas = np.logspace(*spec.get("beta_range", [6, 10]), 9)
    rows = []
    for model in MODELS:
        for a in alphas:
            for b in betas:
                cm = CostModel(alpha=a, beta=b, grad_time=float(spec.get("grad_time", 1e-3)),
                               allreduce=model)
                for label, (k, alg, t) in k_eps.items():
                    calls = 2 if alg == "deg" else 1
                    it = cm.iteration_time(alg, d, M, deg, t, calls)
                    rows.append({"model": model, "alpha": a, "beta": b, "label": label,
                                 "algorithm": alg, "iterations_to_eps": k,
                                 "time_to_eps": k * it if math.isfinite(k) else math.inf})
    pts = pd.DataFrame(rows)
    verdicts = []
    reached = ", ".join(f"{lab}: {k:g}" for lab, (k, _, _) in sorted(k_eps.items()))
    for model, where in MODELS.items():
        p = pts[pts["model"] == model]
        corner = (alphas.max(), betas.max()) if model == "ring" else (alphas.min(), betas.min())
        p = p[(p["alpha"] == corner[0]) & (p["beta"] == corner[1])]
        dpos = p[p["algorithm"] != "cposg"].groupby(["alpha", "beta"])["time_to_eps"].min()
        cpos = p[p["algorithm"] == "cposg"].groupby(["alpha", "beta"])["time_to_eps"].min()
        if not len(dpos) or not len(cpos) or not np.isfinite(cpos).all():
            verdicts.append(rates.Verdict(spec["claim"], setting(study, where), "-", math.nan,
                                          math.nan, math.nan, "inconclusive",
                                          f"needs decentralized runs and CPOSG reaching eps ({reached})"))
            continue
        ratio = float((dpos / cpos).min())
        verdicts.append(rates.check_at_most(
            spec["claim"], setting(study, f"{first['problem']}, {first['topology']} M={M}, "
                                          f"eps={eps:g}, {where}"), ratio, 1.0,
            "time to eps DPOSG / CPOSG < 1") if math.isfinite(ratio) else rates.Verdict(
            spec["claim"], setting(study, where), "time to eps DPOSG / CPOSG < 1", math.inf,
            math.nan, math.nan, "fail", f"DPOSG never reaches eps = {eps:g} ({reached})"))
        verdicts[-1].reason += f"; iterations to eps: {reached}"
    return verdicts, pts


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, axes = P.subplots(1, 2, figsize=(9.0, 3.6))
    for ax, model in zip(axes, MODELS, strict=True):
        p = pts[(pts["model"] == model) & np.isfinite(pts["time_to_eps"])]
        best = p.loc[p.groupby(["alpha", "beta", "algorithm"])["time_to_eps"].idxmin()]
        dpos = best[best["algorithm"] != "cposg"].groupby(["alpha", "beta"])["time_to_eps"].min()
        cpos = best[best["algorithm"] == "cposg"].set_index(["alpha", "beta"])["time_to_eps"]
        R = np.log10(dpos / cpos).unstack("beta")
        if R.size:
            lim = max(float(np.nanmax(np.abs(R.to_numpy()))), 1e-3)
            im = ax.pcolormesh(R.columns, R.index, R.to_numpy(), cmap="RdBu_r", vmin=-lim,
                               vmax=lim, shading="nearest")
            fig.colorbar(im, ax=ax).set_label("log10 time ratio (< 0: DPOSG faster)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"DPOSG / CPOSG, {'ring all-reduce' if model == 'ring' else 'parameter server'}")
        ax.set_xlabel("bandwidth beta (bytes/s)")
        ax.set_ylabel("latency alpha (s per message)")
        ax.grid(False)
    return P.tight(fig)


CLAIM = Claim("wallclock", ("claim", "eps"), analyse, figure,
              optional=("alpha_range", "beta_range", "grad_time", "metric", "model_floats", "smooth"),
              experiments=("trajectory",))
