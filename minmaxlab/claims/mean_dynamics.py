"""C1: gossip preserves averages, so the network averages follow OSG driven by the mean of the
local gradients: zbar^k = xbar^{k-1} - eta gbar(z^{k-1}), xbar^k = xbar^{k-1} - eta gbar(z^k).

Runs: experiment ``mean_dynamics`` (exact oracle, heterogeneous workers). Measured: the largest
relative deviation over every iteration and run. Negative control: a row-stochastic W that is not
doubly stochastic (``rule = "random_walk"``, ``a4 = false`` on an irregular graph), which moves
the average: the deviation must exceed the same threshold.
"""

from __future__ import annotations

import numpy as np

from minmaxlab import rates
from minmaxlab.claims.base import Claim, setting


def analyse(table, spec, study):
    thr = float(spec.get("threshold", 1e-12))
    worst = float(np.nanmax(np.maximum(table["dev_z"], table["dev_x"])))
    n = table["run_id"].nunique()
    tops = ", ".join(sorted(table["topology"].unique()))
    v = rates.check_at_most(spec["claim"], setting(study, f"{n} runs on {tops}"), worst, thr,
                            f"averages follow OSG on mean gradients, max rel. deviation <= {thr:g}")
    pts = table[["iteration", "dev_z", "dev_x", "topology", "workers", "seed", "problem"]]
    return [v], pts


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C1: network averages vs OSG on the mean gradient")
    for k, (name, g) in enumerate(pts.groupby("topology")):
        worst = g.groupby("iteration")[["dev_z", "dev_x"]].max().max(axis=1)
        ax.semilogy(worst.index, np.maximum(worst.to_numpy(), 1e-18), "o-", ms=2.5,
                    color=P.COLORS[k % 10], label=f"{name} (max over runs)")
    ax.axhline(1e-12, color="k", ls="--", lw=1, label="threshold 1e-12")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("max relative deviation of (zbar, xbar)")
    return P.finish(fig, ax)


CLAIM = Claim("mean_dynamics", ("claim",), analyse, figure,
              optional=("threshold",),
              experiments=("mean_dynamics",))
