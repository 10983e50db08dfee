"""C6: the gossip rounds DPOSG needs to match CPOSG grow with 1/(1 - rho), and
t_theory = ceil(log(1/eps)/log(1/rho)) rounds suffice.

Runs: heterogeneous workers (their disagreement persists at the solution) with noise, DPOSG with
t rounds per iteration over a grid of t and topologies, its ``schedule = "eps"`` version, and
CPOSG. Accuracy is that of the workers' own models. Checks: per topology, t_needed = the smallest
t of the grid whose floor is within (1 + delta) of CPOSG's; a topology that never gets there is
a failure when the grid went past t_theory (the theory says t_theory is enough) and inconclusive
otherwise, never a number; t_needed strictly increases with 1/(1 - rho) between topologies whose
spectra differ (a reversed pair fails, a tie on the grid of t is inconclusive); the eps schedule
reaches CPOSG's accuracy. Reported: t_needed / t_theory.
Negative control: the single-exchange variant, whose disagreement does not shrink with t.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, reported, setting, steady
from minmaxlab.topology import rounds_for_eps


def analyse(table, spec, study):
    delta = float(spec["delta"])
    eps = float(spec["eps"])
    frac = float(spec.get("fraction", 0.5))
    metric = spec.get("metric", "stationarity_workers")
    pts = steady(table, metric, frac,
                 ["topology", "workers", "rho", "rounds", "algorithm", "schedule", "schedule_eps",
                  "label", "seed"])
    if not (pts["algorithm"] == "cposg").any():
        return [rates.Verdict(spec["claim"], setting(study), "-", math.nan, math.nan, math.nan,
                              "inconclusive", "no CPOSG runs to compare with")], pd.DataFrame()
    ref = float(pts[pts["algorithm"] == "cposg"]["value"].median())
    target = (1 + delta) * ref
    fixed = pts[(pts["algorithm"] != "cposg") & (pts["schedule"] == "constant")]
    rows, verdicts = [], []
    for name, g in fixed.groupby("topology"):
        med = g.groupby("rounds")["value"].median().sort_index()
        hit = med[med <= target]
        rho = float(g["rho"].iloc[0])
        t_theory = rounds_for_eps(rho, eps)
        rows.append({"topology": name, "rho": rho, "gap_inv": 1 / (1 - rho),
                     "t_needed": float(hit.index.min()) if len(hit) else math.nan,
                     "t_max": float(med.index.max()), "t_theory": t_theory, "cposg_level": ref})
    res = pd.DataFrame(rows).sort_values(["gap_inv", "topology"])
    for _, r in res.iterrows():
        where = setting(study, f"{r['topology']} (rho={r['rho']:.3f}), t_needed")
        text = f"floor within (1+{delta:g}) x CPOSG's at some t <= t_theory = {r['t_theory']}"
        if math.isnan(r["t_needed"]):
            past = r["t_max"] >= r["t_theory"]
            verdicts.append(rates.Verdict(
                spec["claim"], where, text, math.nan, math.nan, math.nan,
                "fail" if past else "inconclusive",
                f"not reached for any t <= {int(r['t_max'])}" + (
                    f", although the grid went past t_theory = {r['t_theory']}" if past else
                    f" (the grid stops below t_theory = {r['t_theory']})")))
        else:
            ratio = r["t_needed"] / r["t_theory"] if r["t_theory"] > 0 else math.nan
            verdicts.append(reported(spec, study, f"{r['topology']} (rho={r['rho']:.3f}), "
                                     "t_needed / t_theory", ratio,
                                     f"t_needed {int(r['t_needed'])}, t_theory {r['t_theory']}"))
    verdicts.append(_ordering(res, spec, study))
    sched = pts[(pts["algorithm"] != "cposg") & (pts["schedule"] == "eps")]
    for e, g in sched.groupby("schedule_eps"):
        ratio = g.groupby("topology")["value"].median() / ref
        verdicts.append(rates.check_at_most(
            spec["claim"], setting(study, f"t = ceil(log(1/eps)/log(1/rho)), eps={e:g}, worst of "
                                          f"{len(ratio)} topologies ({ratio.idxmax()})"),
            float(ratio.max()), 1 + delta, f"accuracy / CPOSG's <= 1 + {delta:g}"))
    return verdicts, res


def _ordering(res, spec, study):
    """t_needed between adjacent topologies whose rho differ: a reversed order fails; equal t on
    the grid is inconclusive (the grid cannot tell them apart, which is no evidence either way);
    strictly increasing passes."""
    where = setting(study, "t needed vs 1/(1-rho)")
    text = "t needed grows strictly with 1/(1-rho): " + " < ".join(res["topology"])
    listing = ", ".join(f"{r.topology}={r.t_needed:g}" for r in res.itertuples())
    if res["t_needed"].isna().any():
        return rates.Verdict(spec["claim"], where, text, math.nan, math.nan, math.nan,
                             "inconclusive", f"a topology never reached CPOSG's level: {listing}")
    rs = [r for r in res.itertuples()]
    pairs = [(a, b) for a, b in zip(rs[:-1], rs[1:], strict=True)
             if not np.isclose(a.rho, b.rho, rtol=1e-9, atol=1e-12)]
    if not pairs:
        return rates.Verdict(spec["claim"], where, text, math.nan, math.nan, math.nan,
                             "inconclusive", f"fewer than 2 different spectra: {listing}")
    reversed_ = [f"{a.topology} > {b.topology}" for a, b in pairs if a.t_needed > b.t_needed]
    ties = [f"{a.topology} = {b.topology}" for a, b in pairs if a.t_needed == b.t_needed]
    verdict = "fail" if reversed_ else "inconclusive" if ties else "pass"
    why = listing
    if reversed_:
        why += f"; in the wrong order: {', '.join(reversed_)}"
    if ties:
        why += f"; tied on the grid of t although the spectra differ: {', '.join(ties)}"
    return rates.Verdict(spec["claim"], where, text, float(len(reversed_)), math.nan, math.nan,
                         verdict, why)


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C6: gossip rounds needed to match CPOSG vs 1/(1 - rho)")
    reached = pts["t_needed"].notna()
    ax.loglog(pts.loc[reached, "gap_inv"], pts.loc[reached, "t_needed"], "o-", color=P.COLORS[0],
              label="measured: smallest t within (1+delta) of CPOSG")
    if (~reached).any():
        ax.loglog(pts.loc[~reached, "gap_inv"], pts.loc[~reached, "t_max"], "^", color=P.COLORS[3],
                  ms=8, label="not reached: t needed > largest t tried")
    th = pts[pts["t_theory"] > 0]
    ax.loglog(th["gap_inv"], th["t_theory"], "s--", color=P.COLORS[1], ms=3,
              label="t_theory = ceil(log(1/eps)/log(1/rho))")
    for _, r in pts.iterrows():
        y = r["t_needed"] if np.isfinite(r["t_needed"]) else r["t_max"]
        ax.annotate(r["topology"], (r["gap_inv"], y), textcoords="offset points", xytext=(4, -10),
                    fontsize=7)
    ax.set_xlabel("1 / (1 - rho)")
    ax.set_ylabel("gossip rounds per iteration t")
    return P.finish(fig, ax)


CLAIM = Claim("rounds_needed", ("claim", "delta", "eps"), analyse, figure,
              optional=("fraction", "metric"),
              experiments=("trajectory",))
