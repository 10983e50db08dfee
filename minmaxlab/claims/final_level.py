"""A method reaches a level: ``metric`` at the end of each run is at most ``threshold``, where
a weaker method (the control) stalls above it. Two claims are checked this way:

* C10, gradient tracking: on workers that differ at the solution, with a fixed number t of
  gossip rounds, a method that follows a tracker of the mean gradient reaches the solution of the
  mean operator (||F(zbar)||^2 -> 0), where the method without one stalls at the heterogeneity
  floor of C9. Why: DPOSG's (and D-SGDA's) fixed point keeps the workers apart, and with a
  nonlinear F the average then sits off the solution; a tracker's mean is the mean of the
  latest gradients, so at a consensual fixed point the mean operator is zero (see
  :class:`minmaxlab.algorithms.DPOSGGT`). Controls: the same methods without tracking.
* Time-varying graphs: the one-peer exponential sequence on M = 2^p workers multiplies to exact
  averaging (J) over p consecutive rounds, so DPOSG with t = p rounds per phase has no
  heterogeneity floor in the workers' stationarity, with one neighbour per round; the static
  exponential graph, with p neighbours per round, keeps a floor. Control: the static graph.

Runs: sigma = 0 (deterministic), heterogeneous workers. Measured per method and topology:
``metric`` at the last recorded iteration (default the network average's stationarity
||F(zbar)||^2), the median over seeds. Check: at most ``threshold``. Reported: the workers'
stationarity (1/M) sum_i ||F(z_i)||^2 and the floats each worker sent per iteration.
"""

from __future__ import annotations

import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, reported, rho_text, setting


def _final(g: pd.DataFrame, metric: str) -> float:
    """The median over the runs of ``g`` of ``metric`` at each run's last recorded iteration."""
    last = g.sort_values("iteration").groupby("run_id").tail(1)
    return float(last[metric].median())


def analyse(table, spec, study):
    threshold = float(spec["threshold"])
    metric = spec.get("metric", "stationarity_avg")
    verdicts, rows = [], []
    for (label, topo, M), g in table.groupby(["label", "topology", "workers"]):
        rho = float(g["rho"].iloc[0])
        value, workers = _final(g, metric), _final(g, "stationarity_workers")
        k = int(g["iteration"].max())
        sent = _final(g, "floats_sent_per_worker") / k if k else float("nan")
        spectrum = f" (rho={rho_text(rho)})" if rho == rho else ""  # nan: a sequence of graphs
        where = setting(study, f"{label} on {topo} M={M}{spectrum}, after {k} iterations")
        verdicts.append(rates.check_at_most(spec["claim"], where, value, threshold,
                                            f"{metric} <= {threshold:g}"))
        verdicts.append(reported(spec, study, f"{label} on {topo} M={M}, stationarity_workers",
                                 workers, "the workers' own stationarity at the same iteration"))
        verdicts.append(reported(spec, study, f"{label} on {topo} M={M}, floats sent per "
                                 "iteration", sent, "per worker"))
        rows.append({"label": label, "topology": topo, "workers": M, "rho": rho, "final": value,
                     "final_workers": workers, "floats_per_iteration": sent})
    return verdicts, pd.DataFrame(rows)


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("A method reaches the level where its control stalls")
    metric = "stationarity_avg"
    for k, ((label, topo), g) in enumerate(table.groupby(["label", "topology"])):
        for col, style in ((metric, "-"), ("stationarity_workers", ":")):
            med = g.groupby("iteration")[col].median()
            ax.semilogy(med.index, med.to_numpy(), style, color=P.COLORS[k % 10],
                        label=f"{label} on {topo}, {col}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("stationarity (the controls' levels: controls.csv)")
    return P.finish(fig, ax)


CLAIM = Claim("final_level", ("claim", "threshold"), analyse, figure, optional=("metric",),
              experiments=("trajectory",))
