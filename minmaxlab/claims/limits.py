"""C7: DPOSG with W = J is CPOSG, and DPOSG with one worker is OSG, iterate for iterate.

Runs: experiment ``limits`` on the topology ``complete`` (taken as the exact J). Measured: the
largest difference of the averaged iterates along the trajectory. Negative control: the same
comparison on a ring (W != J): the difference must exceed the same threshold.
"""

from __future__ import annotations

import numpy as np

from minmaxlab import rates
from minmaxlab.claims.base import Claim, setting


def analyse(table, spec, study):
    thr = float(spec.get("threshold", 1e-12))
    worst = float(np.nanmax(np.maximum(table["diff_J_vs_cposg"], table["diff_M1_vs_osg"])))
    probs = ", ".join(sorted(table["problem"].astype(str).unique()))
    v = rates.check_at_most(spec["claim"], setting(study, f"{probs}, {table['topology'].iloc[0]}, "
                                                          f"{table['iteration'].max()} iterations"),
                            worst, thr, f"W = J gives CPOSG and M = 1 gives OSG, max |dz| <= {thr:g}")
    return [v], table[["iteration", "diff_J_vs_cposg", "diff_M1_vs_osg", "seed", "problem"]]


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C7: DPOSG(W=J) vs CPOSG and DPOSG(M=1) vs OSG")
    for k, col in enumerate(("diff_J_vs_cposg", "diff_M1_vs_osg")):
        g = pts.groupby("iteration")[col].max()
        ax.semilogy(g.index, np.maximum(g.to_numpy(), 1e-18), color=P.COLORS[k], label=col)
    ax.axhline(1e-12, color="k", ls="--", lw=1, label="threshold 1e-12")
    ax.set_xlabel("iteration")
    ax.set_ylabel("max |difference of zbar|")
    return P.finish(fig, ax)


CLAIM = Claim("limits", ("claim",), analyse, figure,
              optional=("threshold",),
              experiments=("limits",))
