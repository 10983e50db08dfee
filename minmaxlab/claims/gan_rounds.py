"""The GAN against the gossip rounds t: the paper's experiment in kind. Every method of the study
(DPOAdam and DPOSG at several t, with local moments or moments of the gossiped gradient, against
CPOAdam and CPOSG) on every data set, split and topology, measured by the quality of the
network-average generator (modes covered and high-quality rate for the mixtures; the Frechet
distance for digits) against iterations and against the floats each worker sent. It decides
nothing: each setting's row reports the median over its seeds at the last iteration; the checks
are those of the studies that carry a claim (GAN, C13). A run that diverged counts as no quality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from minmaxlab.claims.base import Claim, reported

SETTING = ["dataset", "split", "topology", "label"]


def quality_column(table: pd.DataFrame) -> tuple[str, str]:
    """(column, name) of the quality measure drawn and reported: high-quality rate (mixtures),
    Frechet distance (digits) or the larger mean distance (swiss roll)."""
    if "high_quality" in table:
        return "high_quality", "high-quality rate"
    if "frechet" in table:
        return "frechet", "Frechet distance"
    return "data_to_sample", "data->sample distance"


def method_name(row) -> str:
    """The method and its rounds, as the figure's legend and the rows name it."""
    name = str(row["algorithm"])
    if "moments=gossiped_gradient" in str(row["label"]):
        name += " (gossiped-gradient moments)"
    return f"{name} t={int(row['rounds'])}" if row["rounds"] else name


def analyse(table, spec, study):
    col, qname = quality_column(table)
    finals = table.sort_values("iteration").groupby("run_id").tail(1)
    verdicts = []
    for _, runs in finals.groupby(SETTING, sort=True):
        r = runs.iloc[0]
        q = runs[col].fillna(0.0 if col == "high_quality" else np.inf)
        modes = (f"modes median {np.median(runs['modes'].fillna(0)):g}/{int(r['n_modes'])}, "
                 if "modes" in runs else "")
        text = (f"GAN {r['dataset']} {r['split']} {method_name(r)} {r['topology']}: {modes}"
                f"{qname} median {np.median(q):.3g} over {len(runs)} seed(s) after "
                f"{int(runs['iteration'].max())} it.; floats sent per worker "
                f"{np.median(runs['floats_sent_per_worker']):.3g}")
        verdicts.append(reported(spec, study, f"{r['dataset']} {r['split']}, {r['topology']}, "
                                              f"{r['label']}", float(np.median(q)), text))
    return verdicts, finals


def figure(pts, table, folder):
    """Quality against iterations and against floats sent, one row of panels per data set and
    split, one pair of columns per topology; a line per method and t (median over the seeds)."""
    from minmaxlab import plotting as P

    col, qname = quality_column(table)
    table = table.assign(method=[method_name(r) for _, r in table.iterrows()])
    panels = sorted(table.groupby(["dataset", "split"]).groups)
    topologies = sorted(table["topology"].unique())
    methods = sorted(table["method"].unique())
    rows_legend = -(-len(methods) // 3)
    height = 2.6 * len(panels) + 0.6 + 0.18 * rows_legend  # the panels, the title, the legend
    fig, axes = P.subplots(len(panels), 2 * len(topologies),
                           figsize=(3.4 * 2 * len(topologies), height), squeeze=False)
    for i, (ds, split) in enumerate(panels):
        for j, topo in enumerate(topologies):
            sub = table[(table["dataset"] == ds) & (table["split"] == split)
                        & (table["topology"] == topo)]
            for k, m in enumerate(methods):
                g = sub[sub["method"] == m]
                if not len(g):
                    continue
                by = g.groupby("iteration")
                y = by[col].median()  # a diverged run: no quality (no point on the distances)
                y = y.fillna(0.0) if col == "high_quality" else y
                floats = by["floats_sent_per_worker"].median().to_numpy()
                for c, x in enumerate((y.index.to_numpy(), floats)):
                    ax = axes[i, 2 * j + c]
                    style = "--" if "gossiped" in m else ":" if m.startswith("cpo") else "-"
                    keep = x > 0 if c == 1 else np.ones(len(x), dtype=bool)  # a log axis
                    ax.plot(x[keep], y.to_numpy()[keep], style, color=P.COLORS[k % 10], lw=1.0,
                            marker="o", ms=2, label=m if i == 0 and j == 0 and c == 0 else None)
            for c, xlabel in enumerate(("iterations", "floats sent per worker")):
                ax = axes[i, 2 * j + c]
                ax.set_xlabel(xlabel, fontsize=7)
                ax.set_title(f"{ds} {split}, {topo}", fontsize=7)
                ax.tick_params(labelsize=6)
                if c == 1:
                    ax.set_xscale("log")
            axes[i, 0].set_ylabel(qname, fontsize=7)
    fig.legend(loc="lower center", ncol=min(len(methods), 3), frameon=False, fontsize=6.5)
    fig.suptitle("GAN quality of the network-average generator against the gossip rounds t "
                 "(median over seeds)", fontsize=8)
    P.tight(fig)
    fig.subplots_adjust(bottom=(0.55 + 0.18 * rows_legend) / height, top=1 - 0.4 / height,
                        hspace=0.55)
    return fig


CLAIM = Claim("gan_rounds", ("claim",), analyse, figure, experiments=("gan",), divergence="keep",
              decides=False)
