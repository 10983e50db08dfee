"""C2: every gossip contracts the disagreement by rho^t, and DPOSG's steady-state consensus error
falls in t like rho^(2t).

Runs: DPOSG on heterogeneous workers with noise over a grid of t and topologies. Checks: (a) on
random states, ||W^t Y - 1 ybar|| <= rho^t ||Y - 1 ybar|| for t = 1..8 on every topology of the
grid; (b) the fitted slope of log(error) vs t over the whole grid is at most 2 log rho; (c) close
to 2 log rho (within ``tolerance``, relative) for large t, where rho^(2t) is in [1e-12, 0.1] and
the slowest eigenvector dominates. With ``power_law = true`` it also reports the exponent of
error ~ t^a (not a check). Negative control: the single-exchange variant, which gossips x
once per iteration and whose disagreement does not vanish as t grows: (b) must fail.
"""

from __future__ import annotations

import math

import numpy as np

from minmaxlab import rates
from minmaxlab.claims.base import Claim, inconclusive, reported, rho_text, setting, steady


def analyse(table, spec, study):
    tol = float(spec["tolerance"])
    frac = float(spec.get("fraction", 0.5))
    pts = steady(table, "consensus_z", frac,
                 ["topology", "workers", "rounds", "rho", "seed", "topology_spec"])
    verdicts = [_contraction_check(pts, spec, study)]
    for (_, M), g in pts.groupby(["topology_spec", "workers"]):
        g = g.rename(columns={"value": "consensus"})
        name = g["topology"].iloc[0]
        rho = float(g["rho"].iloc[0])
        where = f"{name} M={M}, rho={rho_text(rho)}"
        if not 0.0 < rho < 1.0:
            verdicts.append(inconclusive(spec, study, f"rho = {rho:g}: no rate 2 log rho to check",
                                         where))
            continue
        pred = 2 * math.log(rho)
        fit = rates.fit_slope(g, "rounds", "consensus", group="seed", log_x=False)
        v = rates.check_slope(spec["claim"], setting(study, where + ", all t"), fit, pred, 0.0,
                              mode="at_most")
        v.predicted = f"slope of log err vs t <= 2 log rho = {pred:.3f}"
        verdicts.append(v)
        if spec.get("power_law"):
            verdicts.append(_power_law(g, spec, study, where))
        t_lo = math.log(10) / (2 * math.log(1 / rho))
        t_hi = math.log(1e12) / (2 * math.log(1 / rho))
        big = g[(g["rounds"] >= t_lo) & (g["rounds"] <= t_hi)]
        if big["rounds"].nunique() < 2:
            verdicts.append(inconclusive(spec, study, f"fewer than 2 grid values of t in "
                                         f"[{t_lo:.1f}, {t_hi:.1f}] (rho^2t in [1e-12, 0.1])",
                                         where + ", large t"))
            continue
        fit = rates.fit_slope(big, "rounds", "consensus", group="seed", log_x=False)
        span = f"{int(big['rounds'].min())}..{int(big['rounds'].max())}"
        v = rates.check_slope(spec["claim"], setting(study, f"{where}, large t ({span})"), fit,
                              pred, tol * abs(pred), mode="close")
        v.predicted = f"slope = 2 log rho = {pred:.3f} (+/- {tol:.0%})"
        verdicts.append(v)
    return verdicts, pts.drop(columns="topology_spec")


def _power_law(g, spec, study, where):
    """The exponent a of error ~ t^a (log-log fit over the grid's t): what a graph whose slowest
    mode barely moves shows instead of rho^(2t) (a 2-D grid's diffusion gives a = -1)."""
    fit = rates.fit_slope(g, "rounds", "consensus", group="seed", log_x=True)
    span = f"{int(g['rounds'].min())}..{int(g['rounds'].max())}"
    return reported(spec, study, f"{where}, error ~ t^a over t = {span}", fit.slope,
                    f"exponent a of the consensus error in t (log-log): {fit.slope:.3g}")


def _contraction_check(pts, spec, study):
    import json

    from minmaxlab.config import build_topology

    rng = np.random.default_rng(0)
    worst = 0.0
    for (tspec, M), _ in pts.groupby(["topology_spec", "workers"]):
        worst = max(worst, _max_contraction_ratio(build_topology(json.loads(tspec), int(M)), rng))
    return rates.check_at_most(spec["claim"], setting(study, "every gossip, random states, t = 1..8"),
                               worst, 1.0 + 1e-9, "||W^t Y - 1 ybar|| / (rho^t ||Y - 1 ybar||) <= 1")


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


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C2: steady-state consensus error vs gossip rounds t")
    seeds = 1
    for k, ((name, M), g) in enumerate(pts.groupby(["topology", "workers"])):
        med, lo, hi, n = P.over_seeds(g, "rounds", "value")
        seeds = max(seeds, n)
        c = P.COLORS[k % 10]
        rho = float(g["rho"].iloc[0])
        ax.semilogy(med.index, med.to_numpy(), "o-", color=c, ms=3,
                    label=f"{name} $M$={M} ($\\rho$={rho_text(rho)})")
        P.band(ax, lo, hi, c, n)
        t = med.index.to_numpy(dtype=float)
        ax.semilogy(t, rho ** (2 * t) * med.iloc[-1] / rho ** (2 * t[-1]), "--", color=c, lw=0.8)
    ax.plot([], [], "k--", lw=0.8, label="$\\rho^{2t}$ slope (through the largest $t$)")
    P.band_legend(ax, seeds)
    ax.set_xlabel("gossip rounds per iteration $t$")
    ax.set_ylabel("consensus error $\\frac{1}{M}\\sum_i \\|z_i - \\bar z\\|^2$")
    return P.finish(fig, ax)


CLAIM = Claim("consensus", ("claim", "tolerance"), analyse, figure,
              optional=("fraction", "power_law"),
              experiments=("trajectory",))
