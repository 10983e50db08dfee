"""C10, variance reduction: at a fixed mini-batch and step size, the noise floor of a method with
a STORM (hybrid) estimator falls in proportion to its weight beta, so it vanishes as beta -> 0,
where the floor of the plain stochastic method (C4) is fixed by sigma^2 / m.

Why: with the same sample at both points, g(x_k; xi) - g(x_{k-1}; xi) carries no noise of an
additive oracle, so the estimator's error is e_k = (1 - beta) e_{k-1} + beta n_k, of variance
beta sigma^2 / (2 - beta), correlated over 1 / beta iterations. When 1 / beta is longer than the
iterates' response time 1 / (eta mu), the iterates follow the slowly varying error and the floor
of ||F||^2 is about that variance: proportional to beta (slope 1 in log-log).

Runs: sigma > 0 at a fixed batch, a strongly monotone game, the variance-reduced method with a
grid of beta below eta mu and long enough runs (many times 1 / beta). Measured: the floor (the
mean of ``metric`` over the last ``fraction`` of each run) per beta, and the slope of log floor
against log beta (per seed, averaged). Check: |slope - predicted| <= tolerance. Reported: the
floor at each beta. Negative control: the same estimator with a fresh sample at each point
(``same_sample = false``), whose noise no longer cancels, so that a smaller beta does not lower
its floor.
"""

from __future__ import annotations

import math

from minmaxlab import rates
from minmaxlab.claims.base import Claim, reported, setting, steady


def analyse(table, spec, study):
    pred, tol = float(spec["predicted"]), float(spec["tolerance"])
    frac = float(spec.get("fraction", 0.25))
    metric = spec.get("metric", "stationarity_avg")
    pts = steady(table, metric, frac, ["problem", "workers", "topology", "beta", "label", "seed"])
    med = pts.groupby("beta")["value"].median()
    verdicts = [reported(spec, study, f"floor at beta={b:g}", v, f"mean {metric} over the last "
                         f"{frac:.0%}, median over seeds") for b, v in med.items()]
    where = setting(study, f"{table['problem'].iloc[0]} M={int(table['workers'].iloc[0])}, "
                           f"slope of the floor of {metric} in beta")
    if pts["beta"].nunique() < 2:
        verdicts.append(rates.Verdict(spec["claim"], where, f"slope {pred:g} +/- {tol:g}",
                                      math.nan, math.nan, math.nan, "inconclusive",
                                      "fewer than 2 values of beta"))
        return verdicts, pts
    fit = rates.fit_slope(pts, "beta", "value", group="seed")
    verdicts.append(rates.check_slope(spec["claim"], where, fit, pred, tol))
    return verdicts, pts


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C10: the noise floor of a STORM estimator vs its weight beta")
    med, lo, hi, n = P.over_seeds(pts, "beta", "value")
    ax.loglog(med.index, med.to_numpy(), "o-", color=P.COLORS[0], label="measured floor")
    P.band(ax, lo, hi, P.COLORS[0], n)
    if len(med):
        b = med.index.to_numpy(dtype=float)
        ax.loglog(b, med.iloc[-1] * b / b[-1], "k--", lw=0.8, label="proportional to beta")
    P.band_legend(ax, n)
    ax.set_xlabel("beta (STORM weight)")
    ax.set_ylabel("noise floor")
    return P.finish(fig, ax)


CLAIM = Claim("variance_reduction", ("claim", "predicted", "tolerance"), analyse, figure,
              optional=("fraction", "metric"), experiments=("trajectory",))
