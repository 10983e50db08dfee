"""The house style of every figure: new figures and subplots in it, a common finish, saving.

Each claim draws its own figure in its module of :mod:`minmaxlab.claims`; this module holds only
what they share (one style; log scales where rates are shown; stable file names).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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


def new_figure(title):
    """A figure with one axis in the house style."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
    ax.set_title(title)
    return fig, ax


def subplots(*args, **kw):
    """``plt.subplots`` in the house style."""
    with plt.rc_context(STYLE):
        return plt.subplots(*args, **kw)


def tight(fig):
    with plt.rc_context(STYLE):
        fig.tight_layout()
    return fig


def finish(fig, ax):
    """Legend (if anything is labelled) and a tight layout."""
    with plt.rc_context(STYLE):
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(frameon=False, fontsize=6.5)
        fig.tight_layout()
    return fig


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
