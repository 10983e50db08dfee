"""The house style of every figure: new figures and subplots in it, a common finish, saving.

Each claim draws its own figure in its module of :mod:`minmaxlab.claims`; this module holds only
what they share: one style, figures made through matplotlib's object API (no pyplot state, no
global backend switch at import), PDFs with embedded TrueType fonts (no Type 3, which venues
reject), PNGs at the style's resolution, and stable file names.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

STYLE = {
    "figure.figsize": (5.2, 3.6),
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,  # TrueType, embedded
    "ps.fonttype": 42,
}
DPI = 200  # PNG resolution
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def subplots(nrows: int = 1, ncols: int = 1, **kw):
    """A Figure and its axes in the house style (like ``plt.subplots``, without pyplot)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=kw.pop("figsize", STYLE["figure.figsize"]))
        axes = fig.subplots(nrows, ncols, **kw)
    return fig, axes


def new_figure(title):
    """A figure with one axis in the house style."""
    fig, ax = subplots()
    ax.set_title(title)
    return fig, ax


def tight(fig):
    with matplotlib.rc_context(STYLE):
        fig.tight_layout()
    return fig


def finish(fig, ax):
    """Legend (if anything is labelled) and a tight layout."""
    with matplotlib.rc_context(STYLE):
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(frameon=False, fontsize=6.5)
        fig.tight_layout()
    return fig


def save(fig, path_stem) -> list[str]:
    """Save as vector PDF (TrueType fonts) and PNG at ``DPI`` with a stable name; the paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    with matplotlib.rc_context(STYLE):
        for ext in ("pdf", "png"):
            p = stem.with_suffix(f".{ext}")
            fig.savefig(p, dpi=DPI, bbox_inches="tight",
                        metadata={"CreationDate": None} if ext == "pdf" else None)
            out.append(str(p))
    return out


def count_axis(ax, values, axis: str = "x") -> None:
    """Ticks at the given counts (workers, rounds, batch sizes), labelled as plain integers even on
    a log scale."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ticks = sorted({int(v) for v in values})
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(ticks))
    target.set_minor_locator(NullLocator())
    fmt = ScalarFormatter()
    fmt.set_scientific(False)
    target.set_major_formatter(fmt)


def plot_distinct(ax, curves, plot: str = "loglog") -> None:
    """Draw ``curves`` = [(label, x, y, style kwargs), ...]. A curve equal to one drawn before it
    is drawn again with open markers and a dotted line and labelled "= <that curve>", so that
    coinciding curves are seen to coincide instead of hiding each other."""
    import numpy as np

    drawn = []
    for label, x, y, kw in curves:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        same = next((lab for lab, xs, ys in drawn if xs.shape == x.shape and np.allclose(xs, x)
                     and np.allclose(ys, y, rtol=1e-12, equal_nan=True)), None)
        kw = dict(kw)
        if same is not None:
            kw.update(ls=":", marker="o", mfc="none", ms=7, lw=1.0)
            label = f"{label} (= {same})"
        getattr(ax, plot)(x, y, label=label, **kw)
        drawn.append((label.split(" (= ")[0], x, y))


def over_seeds(frame, x: str, y: str):
    """(median, low, high, seeds): the median over seeds of ``y`` at each ``x`` and the band from
    the smallest to the largest seed (with a handful of seeds, quantiles would pretend a precision
    they do not have). ``seeds`` is the number of values behind each point (at most)."""
    grouped = frame.groupby(x)[y]
    return grouped.median(), grouped.min(), grouped.max(), int(grouped.size().max())


def band(ax, low, high, color, seeds: int) -> None:
    """The seed band under a median curve; nothing for a single seed."""
    if seeds > 1:
        ax.fill_between(low.index, low.to_numpy(), high.to_numpy(), color=color, alpha=0.15, lw=0)


def band_legend(ax, seeds: int) -> None:
    """One legend entry saying what the curves and bands are."""
    if seeds > 1:
        ax.fill_between([], [], [], color="k", alpha=0.15, lw=0,
                        label=f"median over {seeds} seeds; band: smallest to largest")
