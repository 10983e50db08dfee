"""The comparison of methods: every method of a study on the same problems, measured in the four
currencies a decentralized method spends (iterations, oracle calls, gossip rounds, floats sent per
worker). It decides nothing: it reports, per problem and method, the final level of ``metric``
(its mean over the last quarter of the run) and what the method spent to first reach ``eps`` in
each currency (the rolling median over ``smooth`` records; nan when never), the medians over
seeds. Its figure draws the metric against each currency, seeds as bands. The claims that these
methods carry are checked by their own studies (C10, C12, ...), each with its control; this is
the table a reader compares them by.
"""

from __future__ import annotations

import math

import pandas as pd

from minmaxlab.claims.base import Claim, at_eps, reported

CURRENCIES = (("iteration", "iterations"), ("oracle_calls", "oracle calls"),
              ("gossip_rounds", "gossip rounds"), ("floats_sent_per_worker", "floats sent"))


def spent_to_eps(g: pd.DataFrame, metric: str, eps: float, smooth: int) -> dict:
    """What one run spent, in each currency, when the rolling median of ``metric`` first reached
    eps (nan: never), and its final level."""
    tail = g["iteration"] >= 0.75 * g["iteration"].max()  # one record would be one noisy reading
    return {"final": float(g.loc[tail, metric].mean()),
            **at_eps(g, metric, eps, smooth, [col for col, _ in CURRENCIES])}


def analyse(table, spec, study):
    eps = float(spec["eps"])
    metric = spec.get("metric", "stationarity_avg")
    smooth = int(spec.get("smooth", 3))
    rows = []
    for _, g in table.groupby("run_id"):
        rows.append({"problem": g["problem"].iloc[0], "label": g["label"].iloc[0],
                     "seed": g["seed"].iloc[0], **spent_to_eps(g, metric, eps, smooth)})
    per_run = pd.DataFrame(rows)
    med = per_run.groupby(["problem", "label"]).median(numeric_only=True).reset_index()
    verdicts = []
    for r in med.itertuples():
        spent = ", ".join(f"{name} {getattr(r, col):.4g}" for col, name in CURRENCIES)
        verdicts.append(reported(spec, study, f"{r.problem}: {r.label}", r.final,
                                 f"final {metric} (mean over the last quarter); to reach {eps:g}: {spent}"))
    med = med.drop(columns="seed")
    med["metric"] = metric  # for the figure, which gets the points and the table only
    return verdicts, med


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    metric = str(pts["metric"].iloc[0]) if "metric" in pts and len(pts) else "stationarity_avg"
    problems = sorted(table["problem"].unique())
    fig, axes = P.subplots(len(problems), 4, figsize=(13, 3.0 * len(problems)), squeeze=False)
    labels = sorted(table["label"].unique())
    for row, prob in enumerate(problems):
        sub = table[table["problem"] == prob]
        for c, (col, name) in enumerate(CURRENCIES):
            ax = axes[row, c]
            seeds = 1
            for k, label in enumerate(labels):
                g = sub[sub["label"] == label]
                if not len(g):
                    continue
                # the seeds share their records' iterations; the band spans them at each record
                by = g.groupby("iteration")
                x = by[col].median()
                lo, med, hi = by[metric].min(), by[metric].median(), by[metric].max()
                seeds = max(seeds, int(by.size().max()))
                color = P.COLORS[k % 10]
                # a method that spends none of a currency (CPOSG's gossip rounds) has no curve
                keep = (x.to_numpy() > 0) & (lo.to_numpy() > 0)
                if not keep.any():
                    continue
                ax.loglog(x.to_numpy()[keep], med.to_numpy()[keep], color=color, lw=1.0,
                          label=label if row == 0 and c == 0 else None)
                if seeds > 1:
                    ax.fill_between(x.to_numpy()[keep], lo.to_numpy()[keep], hi.to_numpy()[keep],
                                    color=color, alpha=0.15, lw=0)
            ax.set_xlabel(name)
            if c == 0:
                ax.set_ylabel(f"{prob}\n{metric}")
    fig.legend(loc="lower center", ncol=min(len(labels), 4), frameon=False, fontsize=6.5)
    name = str(table["study"].iloc[0]) if "study" in table else "comparison"
    fig.suptitle(f"{name}: {metric} against what each method spends")
    P.tight(fig)
    fig.subplots_adjust(bottom=0.1 + 0.03 * math.ceil(len(labels) / 4), top=0.92)
    return fig


CLAIM = Claim("comparison", ("claim", "eps"), analyse, figure, optional=("metric", "smooth"),
              experiments=("trajectory", "data"), divergence="keep", decides=False)
