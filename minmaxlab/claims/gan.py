"""GAN: decentralized training reaches the quality thresholds of its study file.

Rows read like 'GAN 8gaussians dpoadam ring: modes 8/8, high-quality 87%' (mixtures), or with
the score and Frechet distance (digits), or the two mean distances (swiss roll). Negative control:
the same network stopped after one iteration (an untrained generator), which must miss them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, setting


def analyse(table, c, study):
    """GAN quality at the end of each run, as rows that read like
    'GAN 8gaussians dpoadam ring: modes 8/8, high-quality 87%' (mixtures) or with the score and
    Frechet distance (digits); pass when the thresholds of the study file are met."""
    verdicts, pts = [], []
    for _, g in table.groupby("run_id"):
        last = g.sort_values("iteration").iloc[-1]
        ds = str(last.get("dataset", last.get("problem", "gan")))
        split = f", {last['split']}" if "split" in g else ""
        alg_t = f"{last['algorithm']} t={int(last['rounds'])}" if last["rounds"] else str(last["algorithm"])
        where = f"{ds}{split.replace(', ', ' ')} {alg_t} {last['topology']}"
        setting_base = f"{ds}{split}, {last['topology']} M={int(last['workers'])}, {last['label']}"
        if "modes" in g:
            n_modes = int(last["n_modes"])
            modes = int(last["modes"])
            hq = float(last["high_quality"])
            ok = modes >= int(c.get("min_modes", n_modes)) and hq >= float(c.get("min_high_quality", 0.8))
            verdicts.append(rates.Verdict(
                c["claim"], setting(study, setting_base),
                f"modes >= {c.get('min_modes', n_modes)}/{n_modes}, high quality >= "
                f"{float(c.get('min_high_quality', 0.8)):.0%}", hq, math.nan, math.nan,
                "pass" if ok else "fail",
                f"GAN {where}: modes {modes}/{n_modes}, "
                f"high-quality {hq:.0%}, KL {float(last['kl']):.3f} after {int(last['iteration'])} it."))
        elif "frechet" in g:
            fd = float(last["frechet"])
            ok = fd <= float(c.get("max_frechet", 1e9))
            verdicts.append(rates.Verdict(
                c["claim"], setting(study, setting_base), f"Frechet <= {c.get('max_frechet')}", fd,
                math.nan, math.nan, "pass" if ok else "fail",
                f"GAN {where}: score {float(last['score']):.2f}, "
                f"Frechet {fd:.2f}, classes {int(last['classes_covered'])}/10"))
        elif "sample_to_data" in g:
            d1, d2 = float(last["sample_to_data"]), float(last["data_to_sample"])
            thr = float(c.get("max_distance", 0.1))
            verdicts.append(rates.Verdict(
                c["claim"], setting(study, setting_base), f"both mean distances <= {thr:g}",
                max(d1, d2), math.nan, math.nan, "pass" if max(d1, d2) <= thr else "fail",
                f"GAN {where}: sample->data {d1:.3f}, "
                f"data->sample {d2:.3f}"))
        pts.append(g)
    return verdicts, pd.concat(pts, ignore_index=True) if pts else pd.DataFrame()


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
