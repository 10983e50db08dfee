"""Local steps (issue of the later methods; Deng and Mahdavi 2021): with iid workers, local SGDA
that averages every tau iterations reaches eps with about tau times less communication, the
iterations to eps being nearly those of tau = 1.

Why: between averages every worker follows the same mean dynamics with its own noise; the
average removes the noise's mean-zero part, and the drift that the local steps add grows with
eta tau sigma (iid workers) or eta tau zeta (heterogeneous ones). As long as the drift is below
eps, the iterations to eps do not depend on tau and the floats sent per worker, 2 d (M - 1) / M
per average, fall like 1 / tau.

Runs: local SGDA with a grid of local_steps on iid workers with noise. Measured per tau: the
floats sent per worker when the rolling median (over ``smooth`` records) of ``metric`` first
reaches ``eps``, the median over seeds; then the log-log slope of floats to eps against tau
(per seed, averaged). Check: |slope - predicted| <= tolerance (predicted -1). A tau that never
reaches eps fails the check (it cost more than any budget). Reported: iterations to eps per tau.
Negative control: heterogeneous workers, where the local steps drift apart and large tau never
reaches eps.
"""

from __future__ import annotations

import math

import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, at_eps, reported, setting


def cost_to_eps(table: pd.DataFrame, metric: str, eps: float, smooth: int) -> pd.DataFrame:
    """Per run: local_steps, seed, the iteration where ``metric`` reaches eps and the floats sent
    per worker by then (nan: never)."""
    rows = []
    for rid, g in table.groupby("run_id"):
        spent = at_eps(g, metric, eps, smooth, ["iteration", "floats_sent_per_worker"])
        rows.append({"run_id": rid, "local_steps": int(g["local_steps"].iloc[0]),
                     "seed": g["seed"].iloc[0], "iterations_to_eps": spent["iteration"],
                     "floats_to_eps": spent["floats_sent_per_worker"]})
    return pd.DataFrame(rows).sort_values(["local_steps", "seed"])


def analyse(table, spec, study):
    eps, pred, tol = float(spec["eps"]), float(spec["predicted"]), float(spec["tolerance"])
    metric = spec.get("metric", "stationarity_avg")
    smooth = int(spec.get("smooth", 5))
    pts = cost_to_eps(table, metric, eps, smooth)
    where = setting(study, f"{table['problem'].iloc[0]} M={int(table['workers'].iloc[0])}, "
                           f"floats to {metric} <= {eps:g} vs local steps")
    med = pts.groupby("local_steps")[["iterations_to_eps", "floats_to_eps"]].median()
    listing = ", ".join(f"tau={tau}: {r.floats_to_eps:.4g}" for tau, r in med.iterrows())
    verdicts = [reported(spec, study, f"iterations to eps at tau={tau}", r.iterations_to_eps,
                         "median over seeds") for tau, r in med.iterrows()]
    if med["floats_to_eps"].isna().any():
        never = [str(t) for t, r in med.iterrows() if math.isnan(r.floats_to_eps)]
        verdicts.append(rates.Verdict(spec["claim"], where, f"slope {pred:g} +/- {tol:g}",
                                      math.nan, math.nan, math.nan, "fail",
                                      f"eps never reached with local_steps {', '.join(never)}: "
                                      f"{listing}"))
    elif len(med) < 2:
        verdicts.append(rates.Verdict(spec["claim"], where, f"slope {pred:g} +/- {tol:g}",
                                      math.nan, math.nan, math.nan, "inconclusive",
                                      "fewer than 2 values of local_steps"))
    else:
        fit = rates.fit_slope(pts, "local_steps", "floats_to_eps", group="seed")
        v = rates.check_slope(spec["claim"], where, fit, pred, tol)
        v.reason = f"{v.reason}; floats per worker: {listing}"
        verdicts.append(v)
    return verdicts, pts


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("Local steps: communication to reach eps vs local steps")
    med, lo, hi, n = P.over_seeds(pts.dropna(), "local_steps", "floats_to_eps")
    ax.loglog(med.index, med.to_numpy(), "o-", color=P.COLORS[0], label="measured")
    P.band(ax, lo, hi, P.COLORS[0], n)
    if len(med):
        tau = med.index.to_numpy(dtype=float)
        ax.loglog(tau, med.iloc[0] * tau[0] / tau, "k--", lw=0.8, label="1 / tau")
    ax.set_xlabel("local steps between averages tau")
    ax.set_ylabel("floats sent per worker to reach eps")
    return P.finish(fig, ax)


CLAIM = Claim("local_steps", ("claim", "eps", "predicted", "tolerance"), analyse, figure,
              optional=("metric", "smooth"), experiments=("trajectory",))
