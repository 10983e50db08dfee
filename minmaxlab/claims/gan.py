"""GAN: decentralized training reaches the quality thresholds of its study file, in the median
over its seeds.

The runs of one setting (problem, workers, topology, algorithm; every seed) give one check per
threshold, measured by the median over the seeds with the range beside it, in rows that read like
'GAN 8gaussians iid dpoadam t=1 ring: modes median 8/8 (8 to 8), high-quality median 83% (82% to
85%) over 3 seeds' (mixtures), or with the Frechet distance (digits), or the two mean distances
(swiss roll). A run that diverged counts as no quality at all. Negative control: the same network
stopped after one iteration (an untrained generator), which must miss them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, setting

SETTING = ["problem_spec", "workers", "topology", "label"]  # a setting's runs differ by seed only


def _range(values, fmt) -> str:
    return f"median {fmt(np.median(values))} ({fmt(values.min())} to {fmt(values.max())})"


def analyse(table, c, study):
    """One check per threshold of the study file and setting, on the median over the setting's
    seeds of the quality at each run's last iteration; measured = the median, [ci_low, ci_high]
    = the range over the seeds."""
    verdicts, pts = [], []
    finals = table.sort_values("iteration").groupby("run_id").tail(1)
    for _, runs in finals.groupby(SETTING, sort=False):
        last = runs.iloc[0]
        ds = str(last.get("dataset", last.get("problem", "gan")))
        split = f" {last['split']}" if "split" in runs else ""
        alg_t = f"{last['algorithm']} t={int(last['rounds'])}" if last["rounds"] else str(last["algorithm"])
        where = f"{ds}{split} {alg_t} {last['topology']}"
        base = setting(study, f"{ds}{split}, {last['topology']} M={int(last['workers'])}, "
                              f"{last['label']}")
        tail = f" over {len(runs)} seed{'s' * (len(runs) > 1)}, {int(runs['iteration'].max())} it."
        for predicted, values, ok, text in _checks(runs, c):
            med = float(np.median(values))
            verdicts.append(rates.Verdict(
                c["claim"], base, predicted, med, float(values.min()), float(values.max()),
                "pass" if ok(med) else "fail", f"GAN {where}: {text}{tail}"))
        pts.append(table[table["run_id"].isin(runs["run_id"])])
    return verdicts, pd.concat(pts, ignore_index=True) if pts else pd.DataFrame()


def _checks(runs, c):
    """(predicted, the seeds' values, pass test of the median, the row's text) of each threshold."""
    if "modes" in runs:
        n_modes = int(runs["n_modes"].max())
        need_m = int(c.get("min_modes", n_modes))
        need_hq = float(c.get("min_high_quality", 0.8))
        modes = runs["modes"].fillna(0).astype(float)
        hq = runs["high_quality"].fillna(0).astype(float)
        text = (f"modes {_range(modes, lambda v: f'{v:g}/{n_modes}')}, high-quality "
                f"{_range(hq, lambda v: f'{v:.0%}')}")
        return [(f"median modes >= {need_m}/{n_modes}", modes, lambda m: m >= need_m, text),
                (f"median high quality >= {need_hq:.0%}", hq, lambda m: m >= need_hq, text)]
    if "frechet" in runs:
        fd = runs["frechet"].fillna(np.inf).astype(float)
        need = float(c.get("max_frechet", 1e9))
        text = (f"Frechet {_range(fd, lambda v: f'{v:.2f}')}, score median "
                f"{np.median(runs['score'].fillna(0)):.2f}, classes median "
                f"{np.median(runs['classes_covered'].fillna(0)):g}/10")
        return [(f"median Frechet <= {need:g}", fd, lambda m: m <= need, text)]
    if "sample_to_data" in runs:
        d = np.maximum(runs["sample_to_data"], runs["data_to_sample"]).fillna(np.inf).astype(float)
        need = float(c.get("max_distance", 0.1))
        text = f"the larger mean distance (sample->data, data->sample) {_range(d, lambda v: f'{v:.3f}')}"
        return [(f"median of both mean distances <= {need:g}", d, lambda m: m <= need, text)]
    return []


def figure(pts, table, folder):
    """GAN samples over the true modes at several iterations (mixtures) or a grid of generated
    digits, for each run (the generated samples saved with the run)."""
    from pathlib import Path

    from minmaxlab import plotting as P
    from minmaxlab.gan.data import grid_modes, ring_modes

    runs = table.drop_duplicates("run_id")
    runs = runs.head(6)
    folder = Path(folder)
    digits = "dataset" in runs and (runs["dataset"] == "digits").any()
    snaps_per_run = []
    for _, r in runs.iterrows():
        npz = folder / "runs" / f"{r['run_id']}.npz"
        if not npz.exists():
            continue
        data = np.load(npz)
        keys = sorted(data.files, key=lambda k: int(k.split("_")[1]))
        snaps_per_run.append((r, [(int(k.split("_")[1]), data[k]) for k in keys]))
    if not snaps_per_run:
        return None
    if digits:
        r, snaps = snaps_per_run[0]
        it, S = snaps[-1]
        n = min(64, len(S))
        fig, axes = P.subplots(8, 8, figsize=(4.6, 4.8))
        for k, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if k < n:
                ax.imshow(S[k].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        fig.suptitle(f"GAN digits: {r['label']} ({r['topology']}), iteration {it}", fontsize=8)
        return fig
    from minmaxlab.gan.data import swiss_roll

    cols = min(4, max(len(s) for _, s in snaps_per_run))
    rows_n = len(snaps_per_run)
    fig, axes = P.subplots(rows_n, cols + 1, figsize=(2.0 * (cols + 1), 2.0 * rows_n),
                           squeeze=False)
    for i, (r, snaps) in enumerate(snaps_per_run):
        pick = np.unique(np.linspace(0, len(snaps) - 1, cols).round().astype(int))
        ds = r.get("dataset", "8gaussians")
        if ds == "swissroll":
            modes = swiss_roll(400, np.random.default_rng(0))[0]
        else:
            modes = ring_modes(8) if ds == "8gaussians" else grid_modes()
        # metric curves in the last column
        g = table[table["run_id"] == r["run_id"]].sort_values("iteration")
        axc = axes[i, cols]
        for col, lab in (("high_quality", "high quality"), ("modes", "modes / n"),
                         ("data_to_sample", "data->sample")):
            if col in g:
                y = g[col] / g["n_modes"] if col == "modes" else g[col]
                axc.plot(g["iteration"], y, "o-", ms=2, label=lab)
        axc.set_ylim(bottom=0)
        axc.set_title("metrics vs iteration", fontsize=7)
        axc.tick_params(labelsize=6)
        axc.legend(frameon=False, fontsize=5.5)
        for j, idx in enumerate(pick):
            ax = axes[i, j]
            it, S = snaps[idx]
            ax.scatter(S[:, 0], S[:, 1], s=1, alpha=0.4, color=P.COLORS[0])
            if ds == "swissroll":
                ax.scatter(modes[:, 0], modes[:, 1], s=1, color=P.COLORS[3], alpha=0.3)
            else:
                ax.scatter(modes[:, 0], modes[:, 1], s=12, marker="x", color=P.COLORS[3])
            lim = np.abs(modes).max() * 1.4
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"it {it}", fontsize=7)
            if j == 0:
                lab = r["label"].split("[")[0]
                lab += f" t={r['rounds']}" if r["rounds"] else ""
                ax.set_ylabel(f"{lab}\n{r['topology']} {r.get('split', '')}", fontsize=6.5)
    fig.suptitle("GAN samples (blue) over the true modes (x), network-average generator",
                 fontsize=8)
    return P.tight(fig)


CLAIM = Claim("gan", ("claim",), analyse, figure,
              optional=("min_modes", "min_high_quality", "max_frechet", "max_distance"),
              experiments=("gan",))
