"""C6 redone for accelerated gossip (C10): the gossip rounds per phase a decentralized method
needs to hold its heterogeneity floor below eps grow like (1/(1 - rho))^a, with a = 1 for plain
gossip (W^t) and a = 1/2 for Chebyshev-accelerated gossip (P_t(W)).

Why: the floor falls like c(t)^2, where c(t) is the contraction of the disagreement by one
gossip phase (C9): c(t) = rho^t for W^t, so t = log(C/eps) / log(1/rho) ~ (1/(1 - rho))
log(C/eps); c(t) = 1 / T_t(1/rho) for P_t(W), so t = acosh(C/eps) / acosh(1/rho) ~
(1/sqrt(2 (1 - rho))) log(2C/eps).

Runs: sigma = 0, heterogeneous workers started at the solution of the mean operator (what the
runs measure is the floor), DPOSG (and D-EG, whose accelerated form is deg_mc) with a fine grid
of t (ratio about 1.1 between neighbours) on topologies whose spectral gaps span more than a
decade, with plain and Chebyshev gossip.
Measured, per method, topology and gossip: t_needed = the smallest t of the grid whose floor (``metric``
averaged over the last ``fraction`` of the run) is <= ``eps``; then the exponent a = the
least-squares slope of log t_needed against log(1/(1 - rho)) over the topologies. Check, for each
method's runs with gossip ``gossip``: |a - predicted| <= tolerance (absolute). A topology whose grid never
reaches eps makes the check inconclusive, as do fewer than three different spectra. Reported:
the exponent of the other gossip, and t_needed per topology. Negative control: the other gossip
(plain gossip cannot have a = 1/2; Chebyshev cannot have a = 1).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, inconclusive, reported, rho_text, setting, steady


def rounds_needed(pts: pd.DataFrame, eps: float) -> pd.DataFrame:
    """Per method, topology and gossip: t_needed (nan if no t of the grid reaches eps) and the
    grid's largest t."""
    rows = []
    for (alg, spec, M, kind), g in pts.groupby(["algorithm", "topology_spec", "workers", "gossip"]):
        med = g.groupby("rounds")["value"].median().sort_index()
        hit = med[med <= eps]
        rho = float(g["rho"].iloc[0])
        rows.append({"algorithm": alg, "topology": g["topology"].iloc[0], "topology_spec": spec,
                     "workers": M,
                     "gossip": kind, "rho": rho, "gap_inv": 1.0 / (1.0 - rho),
                     "t_needed": float(hit.index.min()) if len(hit) else math.nan,
                     "t_max": float(med.index.max())})
    return pd.DataFrame(rows)


def exponent(res: pd.DataFrame) -> tuple[float, str]:
    """The slope of log t_needed vs log(1/(1 - rho)), or (nan, why not)."""
    if res["t_needed"].isna().any():
        miss = ", ".join(f"{r.topology} M={r.workers}" for r in res.itertuples()
                         if math.isnan(r.t_needed))
        return math.nan, f"eps not reached within the grid of t on {miss}"
    if res["rho"].round(12).nunique() < 3:
        return math.nan, "fewer than 3 different spectra"
    slope = np.polyfit(np.log(res["gap_inv"]), np.log(res["t_needed"]), 1)[0]
    return float(slope), ""


def analyse(table, spec, study):
    eps = float(spec["eps"])
    pred = float(spec["predicted"])
    tol = float(spec["tolerance"])
    kind = spec["gossip"]
    frac = float(spec.get("fraction", 0.25))
    metric = spec.get("metric", "stationarity_workers")
    pts = steady(table, metric, frac, ["algorithm", "topology", "topology_spec", "workers", "rho",
                                       "rounds", "gossip", "label", "seed"])
    res = rounds_needed(pts, eps).sort_values(["algorithm", "gossip", "gap_inv"])
    verdicts = []
    for (alg, other), g in res.groupby(["algorithm", "gossip"]):
        a, why = exponent(g)
        listing = ", ".join(f"{r.topology} M={r.workers} (1/(1-rho)={r.gap_inv:.3g}): "
                            f"{r.t_needed:g}" for r in g.itertuples())
        where = (f"{alg}, {other} gossip, exponent of t_needed in 1/(1-rho) over {len(g)} "
                 "topologies")
        if other != kind:
            verdicts.append(reported(spec, study, where, a, why or listing))
            continue
        if math.isnan(a):
            verdicts.append(inconclusive(spec, study, why, where,
                                         predicted=f"a = {pred:g} +/- {tol:g}"))
            continue
        verdicts.append(rates.Verdict(
            spec["claim"], setting(study, where), f"a = {pred:g} +/- {tol:g}", a, math.nan,
            math.nan, "pass" if abs(a - pred) <= tol else "fail",
            f"t_needed for floor <= {eps:g}: {listing}"))
    if kind not in set(res["gossip"]):
        verdicts.append(inconclusive(spec, study, f"no runs with {kind} gossip"))
    return verdicts, res


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("Rounds needed vs 1/(1 - rho): plain and Chebyshev gossip")
    for k, ((alg, kind), g) in enumerate(pts.groupby(["algorithm", "gossip"])):
        g = g.sort_values("gap_inv")
        c = P.COLORS[k % 10]
        ok = g["t_needed"].notna()
        a, _ = exponent(g)
        ax.loglog(g.loc[ok, "gap_inv"], g.loc[ok, "t_needed"], "o-", color=c,
                  label=f"{alg}, {kind} gossip: fitted exponent {a:.2f}")
        for r in g.itertuples():
            ax.annotate(f"M={r.workers} ($\\rho$={rho_text(r.rho)})", (r.gap_inv, r.t_needed),
                        textcoords="offset points", xytext=(4, -10), fontsize=6)
    ax.set_xlabel("1 / (1 - rho)")
    ax.set_ylabel("gossip rounds per phase needed")
    return P.finish(fig, ax)


CLAIM = Claim("accelerated_gossip", ("claim", "eps", "predicted", "tolerance", "gossip"), analyse,
              figure, optional=("fraction", "metric"), experiments=("trajectory",))
