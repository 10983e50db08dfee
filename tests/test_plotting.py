"""The house style's shared pieces: seed medians with bands, coinciding curves, count axes."""

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection

from minmaxlab import plotting as P
from minmaxlab.claims import noise_floor


def _floor_points(seeds):
    rows = []
    for s in range(seeds):
        for mM in (4, 8, 16):
            rows.append({"measure": "stationarity_local", "workers": 4, "mM": mM, "seed": s,
                         "value": (1.0 + s) / mM})
    return pd.DataFrame(rows)


def test_over_seeds_is_the_median_and_the_range():
    med, lo, hi, n = P.over_seeds(_floor_points(3), "mM", "value")
    assert n == 3 and list(med.index) == [4, 8, 16]
    assert np.allclose(med.to_numpy(), [2 / 4, 2 / 8, 2 / 16])  # the middle seed, not the mean
    assert np.allclose(lo.to_numpy(), [1 / 4, 1 / 8, 1 / 16])
    assert np.allclose(hi.to_numpy(), [3 / 4, 3 / 8, 3 / 16])


def _bands_and_labels(fig):
    ax = fig.axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection) and len(c.get_paths())]
    return bands, ax.get_legend_handles_labels()[1]


def test_a_figure_over_seeds_draws_the_band_and_says_so():
    bands, labels = _bands_and_labels(noise_floor.figure(_floor_points(3), None, None))
    assert len(bands) == 1 and any("median over 3 seeds" in lab for lab in labels)
    # one seed: a curve with no band and no claim of a median
    bands, labels = _bands_and_labels(noise_floor.figure(_floor_points(1), None, None))
    assert not bands and not any("seeds" in lab for lab in labels)


def test_coinciding_curves_are_drawn_so_that_they_are_seen_to_coincide():
    fig, ax = P.new_figure("t")
    x = np.array([1.0, 2.0, 4.0])
    P.plot_distinct(ax, [("a", x, 1 / x, {}), ("b", x, 1 / x, {}), ("c", x, 2 / x, {})])
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["a", "b (= a)", "c"]
    assert ax.get_lines()[1].get_linestyle() == ":"


def test_count_axes_are_plain_integers_on_a_log_scale():
    fig, ax = P.new_figure("t")
    ax.loglog([4, 16, 64], [1, 2, 3])
    P.count_axis(ax, [4, 16, 64])
    ticks = ax.xaxis.get_major_locator()()
    assert list(ticks) == [4, 16, 64]
    assert ax.xaxis.get_major_formatter().format_ticks(ticks) == ["4", "16", "64"]
