"""C8: where the Minty condition fails, DPOSG and OSG need not converge; where it holds they do.

Runs: Forsaken, the polar game, the weak-MVI quadratic with strong negative curvature, and the
Minty bowl as the contrast, with the iterates recorded. Each run gets one of three outcomes:
``diverge`` (the run stopped as diverged: iterates non-finite or beyond the blow-up bound),
``cycle`` (bounded iterates whose stationarity at the average stays >= ``level`` over the last
``fraction`` of the run) or ``converge`` (it falls below ``level``). A check passes when the
outcome is the one ``expect`` states for the problem (for a problem it does not name, e.g. a
user's game, the one its declared Minty status implies: ``converge`` where MVI holds, ``cycle`` or
``diverge`` where it fails); a divergence is never counted as a cycle.
Negative control: the Minty bowl expected to cycle (the claim's conclusion applied where its
hypothesis does not hold): it converges, so the check must fail.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, setting

OUTCOMES = ("converge", "cycle", "diverge")
BY_MVI = {"holds": "converge", "equality": "converge", "fails": "cycle or diverge"}


def outcome(g: pd.DataFrame, level: float, fraction: float) -> tuple[str, float]:
    """(outcome, smallest stationarity at the average over the run's tail) of one run."""
    g = g.sort_values("iteration")
    if (g["status"] == "diverged").any():
        return "diverge", math.nan
    tail = g[g["iteration"] >= (1 - fraction) * g["iteration"].max()]
    m = float(tail["stationarity_avg"].min())
    return ("cycle" if m >= level else "converge"), m


def analyse(table, spec, study):
    level = float(spec["level"])
    frac = float(spec.get("fraction", 0.5))
    expect = spec["expect"]
    rows = []
    for rid, g in table.groupby("run_id"):
        out, m = outcome(g, level, frac)
        first = g.iloc[0]
        rows.append({"run_id": rid, "problem": first["problem"], "label": first["label"],
                     "workers": first["workers"], "mvi": first.get("mvi", "unknown"),
                     "outcome": out, "tail_min": m})
    pts = pd.DataFrame(rows)
    verdicts = []
    for (prob, label, M), g in pts.groupby(["problem", "label", "workers"]):
        want = expect.get(prob) or BY_MVI.get(g["mvi"].iloc[0])
        if want is None:
            verdicts.append(rates.Verdict(
                spec["claim"], setting(study, f"{prob}, {label}, M={M}"), "-", math.nan,
                math.nan, math.nan, "inconclusive",
                f"no expected outcome: the study names none for {prob} and its Minty status is "
                f"{g['mvi'].iloc[0]!r}"))
            continue
        allowed = want.split(" or ")
        got = sorted(g["outcome"].unique())
        ok = set(got) <= set(allowed)
        verdicts.append(rates.Verdict(
            spec["claim"], setting(study, f"{prob}, {label}, M={M}"),
            f"outcome {want} (converge: min ||F(zbar)||^2 < {level:g} in the tail)",
            float(np.nanmin(g["tail_min"])) if g["tail_min"].notna().any() else math.nan,
            math.nan, math.nan, "pass" if ok else "fail",
            f"outcome {', '.join(got)} over {len(g)} run(s); expected {want}"))
    return verdicts, pts


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    probs = [p for p in ("forsaken", "polar_a1") if p in set(table["problem"])]
    if not probs or "zbar_0" not in table:
        return None
    fig, axes = P.subplots(1, len(probs), figsize=(5.2 * len(probs) / 1.5, 3.6))
    for ax, prob in zip(np.atleast_1d(axes), probs, strict=True):
        g = table[(table["problem"] == prob) & (table["algorithm"] == "dposg")]
        g = g[g["workers"] == g["workers"].max()].sort_values("iteration")
        n = len(g)
        ax.plot(g["zbar_0"], g["zbar_1"], "-", color=P.COLORS[0], lw=0.8, alpha=0.6)
        ax.scatter(g["zbar_0"].iloc[n // 2:], g["zbar_1"].iloc[n // 2:], s=4, color=P.COLORS[3],
                   label="second half of the run", zorder=3)
        ax.plot(g["zbar_0"].iloc[0], g["zbar_1"].iloc[0], "ko", ms=4, label="start")
        ax.set_title(f"C8: {prob}, DPOSG (M={int(g['workers'].iloc[0])})")
        ax.set_xlabel("u (zbar_0)")
        ax.set_ylabel("v (zbar_1)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(frameon=False, fontsize=7)
    return P.tight(fig)


CLAIM = Claim("boundary", ("claim", "level", "expect"), analyse, figure,
              optional=("fraction",),
              experiments=("trajectory",),
              divergence="keep")  # divergence is one of its outcomes
