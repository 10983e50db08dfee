"""Figures: a points table (and the study's tidy table) in, a matplotlib Figure out. Nothing else.

One consistent style; log scales where rates are shown; predicted slopes drawn beside measured
curves; seeds shown as a median with a band.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = {
    "figure.figsize": (5.2, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "savefig.bbox": "tight",
}
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _fig(title):
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
    ax.set_title(title)
    return fig, ax


def _finish(fig, ax):
    with plt.rc_context(STYLE):
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(frameon=False, fontsize=6.5)
        fig.tight_layout()
    return fig


def fig_mean_dynamics(pts: pd.DataFrame, threshold: float = 1e-12):
    fig, ax = _fig("C1: network averages vs OSG on the mean gradient")
    for k, (name, g) in enumerate(pts.groupby("topology")):
        worst = g.groupby("iteration")[["dev_z", "dev_x"]].max().max(axis=1)
        ax.semilogy(worst.index, np.maximum(worst.to_numpy(), 1e-18), "o-", ms=2.5,
                    color=COLORS[k % 10], label=f"{name} (max over runs)")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("max relative deviation of (zbar, xbar)")
    ax.set_ylim(1e-18, 1e-9)
    return _finish(fig, ax)


def fig_consensus(pts: pd.DataFrame):
    fig, ax = _fig("C2: steady-state consensus error vs gossip rounds t")
    for k, ((name, M), g) in enumerate(pts.groupby(["topology", "workers"])):
        med = g.groupby("rounds")["value"].median()
        lo = g.groupby("rounds")["value"].min()
        hi = g.groupby("rounds")["value"].max()
        c = COLORS[k % 10]
        rho = float(g["rho"].iloc[0])
        ax.semilogy(med.index, med.to_numpy(), "o-", color=c, ms=3,
                    label=f"{name} M={M} (rho={rho:.3f})")
        ax.fill_between(med.index, lo.to_numpy(), hi.to_numpy(), color=c, alpha=0.15, lw=0)
        t = med.index.to_numpy(dtype=float)
        model = rho ** (2 * t) / (1 - rho ** (2 * t))
        ax.semilogy(t, model * med.iloc[0] / model[0], ":", color=c, lw=1)
        ax.semilogy(t, rho ** (2 * t) * med.iloc[-1] / rho ** (2 * t[-1]), "--", color=c, lw=0.8)
    ax.plot([], [], "k--", lw=0.8, label="rho^(2t) slope (through the largest t)")
    ax.plot([], [], "k:", lw=1, label="rho^(2t)/(1-rho^(2t)) model")
    ax.set_xlabel("gossip rounds per iteration t")
    ax.set_ylabel("consensus error (1/M) sum ||z_i - zbar||^2")
    return _finish(fig, ax)


def fig_rate(pts: pd.DataFrame, metric: str = "avg_stationarity_local"):
    fig, ax = _fig("C3: running average of the stationarity (sigma = 0)")
    styles = ["-", "--", "-.", ":"]
    for k, (prob, gp) in enumerate(pts.groupby("problem")):
        c = COLORS[k % 10]
        for j, (label, g) in enumerate(gp.groupby("label")):
            g = g[g["iteration"] > 0]
            ax.loglog(g["iteration"], g[metric], styles[j % 4], color=c, label=f"{prob}: {label}")
            ax.fill_between(g["iteration"], g["lo"], g["hi"], color=c, alpha=0.12, lw=0)
        g = gp[gp["iteration"] > 0]
        if "osg_bound" in g:
            first = g[g["label"] == g["label"].iloc[0]]
            ax.loglog(first["iteration"], first["osg_bound"], color=c, lw=3, alpha=0.25,
                      label=f"{prob}: OSG bound 8||x0-x*||^2/(eta^2 K)")
    g = pts[pts["iteration"] > 0]
    k0 = g["iteration"].max()
    y0 = g[g["iteration"] == k0][metric].max()
    ks = np.array([k0 / 30, k0])
    ax.loglog(ks, 3 * y0 * k0 / ks, "k-", lw=1, label="slope -1 (predicted)")
    ax.set_xlabel("iteration K")
    ax.set_ylabel("(1/K) sum_k ||(1/M) sum_i F(z_i^k)||^2")
    return _finish(fig, ax)


def fig_noise_floor(pts: pd.DataFrame):
    fig, ax = _fig("C4: noise floor vs total batch m*M")
    for k, (M, g) in enumerate(pts.groupby("workers")):
        med = g.groupby("mM")["value"].median()
        ax.loglog(med.index, med.to_numpy(), "o", color=COLORS[k % 10], label=f"M = {M}")
        ax.loglog(g["mM"], g["value"], ".", color=COLORS[k % 10], alpha=0.3, ms=3)
    med = pts.groupby("mM")["value"].median()
    x = np.array([med.index.min(), med.index.max()], dtype=float)
    ax.loglog(x, med.iloc[0] * med.index[0] / x, "k--", lw=1, label="slope -1 (predicted)")
    ax.set_xlabel("per-worker batch m x workers M")
    ax.set_ylabel("steady-state ||(1/M) sum_i F(z_i)||^2")
    return _finish(fig, ax)


def fig_speedup(pts: pd.DataFrame):
    fig, ax = _fig("C5: iterations to reach eps vs workers (best step size)")
    med = pts.groupby("workers")["iterations_to_eps"].median()
    ax.loglog(med.index, med.to_numpy(), "o-", color=COLORS[0], label="measured (median over seeds)")
    ax.loglog(pts["workers"], pts["iterations_to_eps"], ".", color=COLORS[0], alpha=0.3)
    x = med.index.to_numpy(dtype=float)
    ax.loglog(x, med.iloc[0] * x[0] / x, "k--", lw=1, label="1/M (linear speed-up)")
    for M, k in med.items():
        eta = pts[pts["workers"] == M]["eta"].iloc[0]
        ax.annotate(f"eta={eta:g}", (M, k), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("workers M")
    ax.set_ylabel("iterations until stationarity <= eps")
    return _finish(fig, ax)


def fig_rounds(pts: pd.DataFrame):
    fig, ax = _fig("C6: gossip rounds needed to match CPOSG vs 1/(1 - rho)")
    p = pts.copy()
    reached = p["t_needed"].notna()
    ax.loglog(p.loc[reached, "gap_inv"], p.loc[reached, "t_needed"], "o-", color=COLORS[0],
              label="measured: smallest t within (1+delta) of CPOSG")
    if (~reached).any():
        tmax = p.loc[~reached, "t_max"] if "t_max" in p else pd.Series([1.0] * int((~reached).sum()))
        ax.loglog(p.loc[~reached, "gap_inv"], tmax.to_numpy(), "^", color=COLORS[3], ms=8,
                  label="not reached: t needed > largest t tried")
    th = p[p["t_theory"] > 0]
    ax.loglog(th["gap_inv"], th["t_theory"], "s--", color=COLORS[1], ms=3,
              label="ceil(log(1/eps)/log(1/rho))")
    for _, r in p.iterrows():
        y = r["t_needed"] if np.isfinite(r["t_needed"]) else r.get("t_max", 1.0)
        ax.annotate(r["topology"], (r["gap_inv"], y), textcoords="offset points", xytext=(4, -10),
                    fontsize=7)
    ax.set_xlabel("1 / (1 - rho)")
    ax.set_ylabel("gossip rounds per iteration t")
    return _finish(fig, ax)


def fig_limits(pts: pd.DataFrame, threshold: float = 1e-12):
    fig, ax = _fig("C7: DPOSG(W=J) vs CPOSG and DPOSG(M=1) vs OSG")
    for k, col in enumerate(("diff_J_vs_cposg", "diff_M1_vs_osg")):
        g = pts.groupby("iteration")[col].max()
        ax.semilogy(g.index, np.maximum(g.to_numpy(), 1e-18), color=COLORS[k], label=col)
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("max |difference of zbar|")
    ax.set_ylim(1e-18, 1e-9)
    return _finish(fig, ax)


def fig_boundary(table: pd.DataFrame, problems=("forsaken", "polar_a1")):
    """C8: trajectories of the network average in the plane (limit cycles)."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(problems), figsize=(5.2 * len(problems) / 1.5, 3.6))
    axes = np.atleast_1d(axes)
    for ax, prob in zip(axes, problems, strict=True):
        g = table[(table["problem"] == prob) & (table["algorithm"] == "dposg")]
        if "zbar_0" not in g or not len(g):
            ax.set_title(f"{prob}: no iterates recorded")
            continue
        g = g[g["workers"] == g["workers"].max()].sort_values("iteration")
        n = len(g)
        ax.plot(g["zbar_0"], g["zbar_1"], "-", color=COLORS[0], lw=0.8, alpha=0.6)
        ax.scatter(g["zbar_0"].iloc[n // 2:], g["zbar_1"].iloc[n // 2:], s=4, color=COLORS[3],
                   label="second half of the run", zorder=3)
        ax.plot(g["zbar_0"].iloc[0], g["zbar_1"].iloc[0], "ko", ms=4, label="start")
        from minmaxlab.problems import problem

        zs = problem(prob).solution
        ax.plot(zs[0], zs[1], "k*", ms=9, label="stationary point z*")
        ax.set_title(f"C8: {prob}, DPOSG (M={int(g['workers'].iloc[0])})")
        ax.set_xlabel("u (zbar_0)")
        ax.set_ylabel("v (zbar_1)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(frameon=False, fontsize=7)
    with plt.rc_context(STYLE):
        fig.tight_layout()
    return fig


def fig_wallclock(pts: pd.DataFrame):
    fig, ax = _fig("Modelled time to eps: DPOSG / CPOSG")
    best = pts.dropna(subset=["time_to_eps"])
    best = best.loc[best.groupby(["alpha", "beta", "algorithm"])["time_to_eps"].idxmin()]
    wide = best.pivot_table(index="alpha", columns=["beta", "algorithm"], values="time_to_eps")
    alphas = np.array(sorted(best["alpha"].unique()))
    betas = np.array(sorted(best["beta"].unique()))
    R = np.full((len(alphas), len(betas)), np.nan)
    for j, b in enumerate(betas):
        if (b, "dposg") in wide and (b, "cposg") in wide:
            R[:, j] = np.log10(wide[(b, "dposg")] / wide[(b, "cposg")]).to_numpy()
    lim = np.nanmax(np.abs(R)) if np.isfinite(R).any() else 1
    im = ax.pcolormesh(betas, alphas, R, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
    if np.isfinite(R).any() and np.nanmin(R) < 0 < np.nanmax(R):
        ax.contour(betas, alphas, R, levels=[0], colors="k", linewidths=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bandwidth beta (bytes/s)")
    ax.set_ylabel("latency alpha (s per message)")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("log10 time ratio (< 0: DPOSG faster)")
    ax.grid(False)
    return _finish(fig, ax)


def fig_gan(table: pd.DataFrame, folder):
    """GAN samples over the true modes at several iterations (mixtures) or a grid of generated
    digits, for each run (the generated samples saved with the run)."""
    from pathlib import Path

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
        with plt.rc_context(STYLE):
            fig, axes = plt.subplots(8, 8, figsize=(4.6, 4.8))
        for k, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if k < n:
                ax.imshow(S[k].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        fig.suptitle(f"GAN digits: {r['label']} ({r['topology']}), iteration {it}", fontsize=8)
        return fig
    from minmaxlab.gan.data import swiss_roll

    cols = min(4, max(len(s) for _, s in snaps_per_run))
    rows_n = len(snaps_per_run)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows_n, cols + 1, figsize=(2.0 * (cols + 1), 2.0 * rows_n),
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
            ax.scatter(S[:, 0], S[:, 1], s=1, alpha=0.4, color=COLORS[0])
            if ds == "swissroll":
                ax.scatter(modes[:, 0], modes[:, 1], s=1, color=COLORS[3], alpha=0.3)
            else:
                ax.scatter(modes[:, 0], modes[:, 1], s=12, marker="x", color=COLORS[3])
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
    with plt.rc_context(STYLE):
        fig.suptitle("GAN samples (blue) over the true modes (x), network-average generator",
                     fontsize=8)
        fig.tight_layout()
    return fig


FIGURES = {
    "mean_dynamics": fig_mean_dynamics,
    "consensus": fig_consensus,
    "rate": fig_rate,
    "noise_floor": fig_noise_floor,
    "speedup": fig_speedup,
    "rounds_needed": fig_rounds,
    "limits": fig_limits,
    "non_convergence": None,  # drawn from the table (trajectories): fig_boundary
    "wallclock": fig_wallclock,
}


def figure_for(analysis: str, pts: pd.DataFrame, table: pd.DataFrame | None = None, folder=None):
    if analysis == "non_convergence":
        return fig_boundary(table)
    if analysis == "gan":
        return fig_gan(table, folder) if table is not None and folder is not None else None
    fn = FIGURES.get(analysis)
    return None if fn is None else fn(pts)


def save(fig, path_stem) -> list[str]:
    """Save as vector PDF and PNG with a stable name; returns the paths."""
    from pathlib import Path

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("pdf", "png"):
        p = stem.with_suffix(f".{ext}")
        fig.savefig(p, metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(str(p))
    plt.close(fig)
    return out
