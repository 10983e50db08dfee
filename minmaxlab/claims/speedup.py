"""C5: linear speed-up: with the per-worker batch fixed and noise dominating, the iterations to
reach eps fall like 1/M.

Runs: DPOSG with t = 1 on a sparse graph, heterogeneous workers, a geometric grid of step sizes;
for each M and seed the best step size of the grid. Checked: the log-log slope of iterations to
``eps`` against M is -1 (within ``tolerance``), with ``eps`` stated in the study file before the
run, on the paper's measure ||(1/M) sum_i F_i(z_i)||^2 and on the stationarity at the average
model ||F(zbar)||^2. The paper's measure alone cannot fail here: without any gossip each worker
settles at its own solution, where F_i(z_i) = 0, so the mean of the local gradients averages M
independent noises and "speeds up" although no worker learns the common game; F(zbar) does not.
Reported beside them: the same slopes for every eps of ``eps_table`` (the sensitivity to the
choice of eps) and on the workers' own models. Negative control: gossip-free local OSG (t = 0).
"""

from __future__ import annotations

import math

import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, iterations_to_eps, reported, setting


def _best(df, metric, eps, smooth):
    rows = []
    for (M, eta, seed), g in df.groupby(["workers", "eta", "seed"]):
        rows.append({"workers": M, "eta": eta, "seed": seed,
                     "iterations_to_eps": iterations_to_eps(g, metric, eps, smooth)})
    per = pd.DataFrame(rows)
    best = per.dropna().sort_values("iterations_to_eps").drop_duplicates(["workers", "seed"])
    return best.sort_values(["workers", "seed"])


def _slope(best):
    if best["workers"].nunique() < 2:
        return None
    return rates.fit_slope(best, "workers", "iterations_to_eps", group="seed")


def analyse(table, spec, study):
    tol = float(spec["tolerance"])
    eps = float(spec["eps"])
    metric = spec.get("metric", "stationarity_local")
    smooth = int(spec.get("smooth", 9))
    df = table
    prob = df["problem"].iloc[0]
    where = f"{prob}, {df['topology'].iloc[0]}, t={int(df['rounds'].iloc[0])}, best eta per M"
    verdicts, pts = [], []
    for col in (metric, "stationarity_avg"):
        best = _best(df, col, eps, smooth)
        best["eps"], best["measure"] = eps, col
        fit = _slope(best)
        if fit is None:
            v = rates.Verdict(spec["claim"], setting(study, f"{where}, {col}"), "slope -1",
                              math.nan, math.nan, math.nan,
                              "fail" if df["workers"].nunique() > 1 else "inconclusive",
                              f"eps = {eps:g} reached for fewer than 2 worker counts")
        else:
            v = rates.check_slope(spec["claim"], setting(study, f"{where}, {col}, eps={eps:g}"),
                                  fit, -1.0, tol, mode="close")
        verdicts.append(v)
        pts.append(best)
    for other in spec.get("eps_table", []):
        for col in (metric, "stationarity_avg", "stationarity_workers"):
            if float(other) == eps and col != "stationarity_workers":
                continue
            b = _best(df, col, float(other), smooth)
            b["eps"], b["measure"] = float(other), col
            f = _slope(b)
            slope = f.slope if f is not None else math.nan
            verdicts.append(reported(spec, study, f"{where}, {col}, eps={float(other):g}", slope,
                                     f"slope of iterations to eps vs M {slope:.3f}"
                                     if f is not None else "eps reached for < 2 worker counts"))
            pts.append(b)
    return verdicts, pd.concat(pts, ignore_index=True)


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C5: iterations to reach $\\varepsilon$ vs workers $M$ (best step size)")
    curves, seeds = [], 1
    for k, ((meas, eps), g) in enumerate(pts.groupby(["measure", "eps"])):
        med, lo, hi, n = P.over_seeds(g, "workers", "iterations_to_eps")
        seeds = max(seeds, n)
        style = {"color": P.COLORS[k % 10], "ms": 3,
                 "marker": "s" if meas == "stationarity_workers" else "o"}
        curves.append((f"{meas}, $\\varepsilon$={eps:g}", med.index, med.to_numpy(), style))
        P.band(ax, lo, hi, P.COLORS[k % 10], n)
    P.plot_distinct(ax, curves)
    P.band_legend(ax, seeds)
    main = pts[pts["measure"] == "stationarity_local"]
    if len(main):
        med = main[main["eps"] == main["eps"].iloc[0]].groupby("workers")["iterations_to_eps"].median()
        x = med.index.to_numpy(dtype=float)
        ax.loglog(x, med.iloc[0] * x[0] / x, "k--", lw=1, label="$\\propto 1/M$ (linear speed-up)")
    P.count_axis(ax, pts["workers"].unique())
    ax.set_xlabel("workers $M$")
    ax.set_ylabel("iterations until stationarity $\\leq \\varepsilon$")
    return P.finish(fig, ax)


CLAIM = Claim("speedup", ("claim", "tolerance", "eps"), analyse, figure,
              optional=("eps_table", "metric", "smooth"),
              experiments=("trajectory",),
              divergence="drop")  # a step size that diverges is a rejected candidate
