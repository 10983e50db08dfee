"""C4: with a fixed step size the stationarity levels off at a floor proportional to
sigma^2 / (m M).

Runs: DPOSG with t = 1 on a sparse graph, heterogeneous workers, Gaussian noise, over per-worker
batches m and worker counts M. Checked: the log-log slope of the paper's measure ||(1/M) sum_i
F(z_i)||^2 against m M is -1 (within ``tolerance``). Reported beside it: the same slope on the
workers' own models, whose floor also holds the disagreement that noise does not average away.
Negative control: gossip-free local OSG (t = 0): the workers never exchange, so adding workers
does not lower the floor of the average's measure.
"""

from __future__ import annotations

import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, reported, setting, steady


def analyse(table, spec, study):
    tol = float(spec["tolerance"])
    frac = float(spec.get("fraction", 0.5))
    metric = spec.get("metric", "stationarity_local")
    df = table
    verdicts, out = [], []
    for (_, label), g in df.groupby(["problem_spec", "label"]):
        prob = g["problem"].iloc[0]
        where = f"{prob}, {g['topology'].iloc[0]}, {label}"
        for col, decides in ((metric, True), ("stationarity_workers", False)):
            pts = steady(g, col, frac, ["workers", "batch", "sigma", "seed", "topology", "label"])
            pts["mM"] = pts["batch"] * pts["workers"]
            pts["problem"], pts["measure"] = prob, col
            fit = rates.fit_slope(pts.rename(columns={"value": "floor"}), "mM", "floor",
                                  group="seed")
            if decides:
                verdicts.append(rates.check_slope(spec["claim"], setting(study, f"{where}, {col}"),
                                                  fit, -1.0, tol, mode="close"))
            else:
                verdicts.append(reported(spec, study, f"{where}, {col}", fit.slope,
                                         f"floor slope vs m M on the workers' models {fit.slope:.3f}"
                                         f" ({fit.n_groups} seeds)"))
            out.append(pts)
    return verdicts, pd.concat(out, ignore_index=True)


def figure(pts, table, folder):
    import numpy as np

    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C4: noise floor vs total batch m*M")
    seeds = 1
    for k, ((meas, M), g) in enumerate(pts.groupby(["measure", "workers"])):
        med, lo, hi, n = P.over_seeds(g, "mM", "value")
        seeds = max(seeds, n)
        ax.loglog(med.index, med.to_numpy(), "o" if meas.startswith("stationarity_l") else "s",
                  color=P.COLORS[k % 10], label=f"{meas}, M = {M}")
        P.band(ax, lo, hi, P.COLORS[k % 10], n)
    main = pts[pts["measure"] != "stationarity_workers"]
    med = main.groupby("mM")["value"].median()
    x = np.array([med.index.min(), med.index.max()], dtype=float)
    ax.loglog(x, med.iloc[0] * med.index[0] / x, "k--", lw=1, label="slope $-1$ (predicted)")
    P.band_legend(ax, seeds)
    P.count_axis(ax, pts["mM"].unique())
    ax.set_xlabel("per-worker batch $m$ $\\times$ workers $M$")
    ax.set_ylabel("steady-state stationarity")
    return P.finish(fig, ax)


CLAIM = Claim("noise_floor", ("claim", "tolerance"), analyse, figure,
              optional=("fraction", "metric"),
              experiments=("trajectory",))
