"""Rate fits and claim checks: turn measured curves into :class:`Verdict` rows.

* :func:`loglog_slope`, :func:`semilog_slope` -- plain least-squares slopes of log(y);
* :func:`fit_slope` -- mean of the per-seed slopes, with a t-interval from 5 seeds on (:class:`Fit`);
* :func:`check_slope`, :func:`check_bound`, :func:`check_at_most`, :func:`check_at_least`,
  :func:`check_ordering` -- one :class:`Verdict` each ("pass" | "fail" | "inconclusive");
* :func:`first_crossing`, :func:`steady_state` -- iterations to reach eps, noise floors;
* :func:`verdict_table`, :func:`format_verdicts` -- a DataFrame or a terminal table of verdicts.

No plotting, no simulation. Bad input raises :class:`~minmaxlab.errors.MinmaxlabError` (a ``ValueError``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from minmaxlab.errors import MinmaxlabError

__all__ = [
    "MIN_SEEDS_FOR_CI",
    "VERDICTS",
    "Fit",
    "Verdict",
    "check_at_least",
    "check_at_most",
    "check_bound",
    "check_ordering",
    "check_slope",
    "first_crossing",
    "fit_slope",
    "format_verdicts",
    "loglog_slope",
    "semilog_slope",
    "steady_state",
    "verdict_table",
]

VERDICTS = ("pass", "fail", "inconclusive", "reported", "not applicable")
# Fewer independent seeds than this get no interval: a t-interval over 2 to 4 slopes is too wide
# to decide anything, and points along one trajectory are not independent.
MIN_SEEDS_FOR_CI = 5
SLOPE_MODES = ("close", "at_most", "at_least")


@dataclass
class Verdict:
    """One claim check: what was predicted, what was measured, and the verdict."""

    claim: str
    setting: str
    predicted: str
    measured: float
    ci_low: float
    ci_high: float
    verdict: str
    reason: str
    control: str = ""  # the setting run as this check's negative control, if any
    control_verdict: str = ""  # its verdict on that setting; it must be "fail"

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise MinmaxlabError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        self.measured, self.ci_low, self.ci_high = (float(v) for v in (self.measured, self.ci_low,
                                                                        self.ci_high))

    def as_dict(self) -> dict:
        """The fields as a plain dict, in field order."""
        return asdict(self)


@dataclass
class Fit:
    """A fitted slope (mean over seeds) with its t-interval (nan below MIN_SEEDS_FOR_CI seeds)."""

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    n_points: int
    n_groups: int


# ----------------------------------------------------------------------------------------- helpers

def _g(v) -> str:
    """3 significant digits; scientific notation for tiny or huge numbers."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    return f"{v:.3g}"


def _real(name, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MinmaxlabError(f"{name} must be a real number, got {value!r}") from None
    return v


def _finite(name, value) -> float:
    v = _real(name, value)
    if not math.isfinite(v):
        raise MinmaxlabError(f"{name} must be finite, got {value!r}")
    return v


def _pair(x, y, xname="x", yname="y") -> tuple[np.ndarray, np.ndarray]:
    try:
        xa = np.asarray(x, dtype=float)
        ya = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as e:
        raise MinmaxlabError(f"{xname} and {yname} must be numeric arrays: {e}") from None
    if xa.shape != ya.shape:
        raise MinmaxlabError(f"{xname} and {yname} must have the same shape, got {xa.shape} and {ya.shape}")
    return xa.ravel(), ya.ravel()


def _lstsq(lx: np.ndarray, ly: np.ndarray, what: str) -> tuple[float, float]:
    if lx.size < 2 or np.unique(lx).size < 2:
        raise MinmaxlabError(f"{what}: need at least 2 usable points with distinct x, got "
                             f"{lx.size} point(s) with {np.unique(lx).size} distinct x")
    mx, my = lx.mean(), ly.mean()
    dx = lx - mx
    slope = float(np.dot(dx, ly - my) / np.dot(dx, dx))
    return slope, float(my - slope * mx)


# ------------------------------------------------------------------------------------------ slopes

def loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares (slope, intercept) of log(y) vs log(x); drops non-positive/non-finite points."""
    xa, ya = _pair(x, y)
    ok = np.isfinite(xa) & np.isfinite(ya) & (xa > 0) & (ya > 0)
    return _lstsq(np.log(xa[ok]), np.log(ya[ok]), "loglog_slope")


def semilog_slope(x, y) -> tuple[float, float]:
    """Least-squares (slope, intercept) of log(y) vs x; drops non-finite x and non-positive y."""
    xa, ya = _pair(x, y)
    ok = np.isfinite(xa) & np.isfinite(ya) & (ya > 0)
    return _lstsq(xa[ok], np.log(ya[ok]), "semilog_slope")


def fit_slope(df: pd.DataFrame, x: str, y: str, group: str | None = "seed", window=None,
              log_x: bool = True, level: float = 0.95) -> Fit:
    """Slope of log(y) vs log(x) (or x): the mean of the per-group (per-seed) least-squares slopes,
    with a Student t interval over those slopes when there are at least ``MIN_SEEDS_FOR_CI`` groups.

    The groups (independent seeds) are the unit of replication: points along one trajectory are
    autocorrelated, so no interval is computed from them, and with fewer than
    ``MIN_SEEDS_FOR_CI`` seeds the interval is nan (the number of groups is in the Fit).
    Rows outside ``window=(lo, hi)`` (inclusive; None = open), with non-finite x, non-finite or
    non-positive y, or (log_x) non-positive x are dropped; duplicate (group, x) rows are reduced
    to their median; groups with fewer than 2 distinct x are left out. If ``group`` is None or not
    a column there is one group.
    """
    if not isinstance(df, pd.DataFrame):
        raise MinmaxlabError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    for arg, col in (("x", x), ("y", y)):
        if col not in df.columns:
            raise MinmaxlabError(f"{arg}: column {col!r} is not in df (columns: {list(df.columns)})")
    level = _real("level", level)
    if not 0.0 < level < 1.0:
        raise MinmaxlabError(f"level must be in (0, 1), got {level}")
    try:
        xs = pd.to_numeric(df[x], errors="raise").to_numpy(dtype=float)
        ys = pd.to_numeric(df[y], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise MinmaxlabError(f"columns {x!r} and {y!r} must be numeric") from None
    grouped = group is not None and group in df.columns
    gs = df[group].to_numpy() if grouped else np.zeros(len(df), dtype=int)

    keep = np.isfinite(xs) & np.isfinite(ys) & (ys > 0)
    if log_x:
        keep &= xs > 0
    if window is not None:
        try:
            lo, hi = window
        except (TypeError, ValueError):
            raise MinmaxlabError(f"window must be a pair (lo, hi), got {window!r}") from None
        lo = -math.inf if lo is None else _real("window[0]", lo)
        hi = math.inf if hi is None else _real("window[1]", hi)
        if not lo <= hi:
            raise MinmaxlabError(f"window must have lo <= hi, got {window!r}")
        keep &= (xs >= lo) & (xs <= hi)
    sub = pd.DataFrame({"x": xs[keep], "y": ys[keep], "g": gs[keep]})
    if sub["x"].nunique() < 2:
        raise MinmaxlabError(f"fit_slope: fewer than 2 distinct {x!r} values remain after filtering "
                             f"(window={window!r}, {int(keep.sum())} usable row(s) of {len(df)})")
    per = sub.groupby(["g", "x"], dropna=False)["y"].median().reset_index()
    slopes, intercepts = [], []
    for _, g in per.groupby("g", dropna=False):
        if g["x"].nunique() < 2:
            continue
        lx = np.log(g["x"].to_numpy()) if log_x else g["x"].to_numpy()
        s, c = _lstsq(lx, np.log(g["y"].to_numpy()), "fit_slope")
        slopes.append(s)
        intercepts.append(c)
    if not slopes:
        raise MinmaxlabError(f"fit_slope: no {group!r} group has 2 distinct {x!r} values")
    slopes = np.array(slopes)
    n = slopes.size
    ci_low = ci_high = math.nan
    if n >= MIN_SEEDS_FOR_CI:
        from scipy import stats

        half = stats.t.ppf(0.5 + level / 2, n - 1) * slopes.std(ddof=1) / math.sqrt(n)
        ci_low, ci_high = float(slopes.mean() - half), float(slopes.mean() + half)
    return Fit(slope=float(slopes.mean()), intercept=float(np.mean(intercepts)), ci_low=ci_low,
               ci_high=ci_high, n_points=int(keep.sum()), n_groups=int(n))


# ------------------------------------------------------------------------------------------ checks

def _slope_rule(mode: str, predicted: float, tolerance: float):
    if mode == "close":
        return lambda s: abs(s - predicted) <= tolerance
    if mode == "at_most":
        return lambda s: s <= predicted + tolerance
    return lambda s: s >= predicted - tolerance


def check_slope(claim: str, setting: str, fit: Fit, predicted: float, tolerance: float,
                mode: str = "close") -> Verdict:
    """Compare a fitted slope with a prediction: mode "close" (|s - p| <= tol), "at_most", "at_least".

    Inconclusive when the slope is nan, or when the CI meets both the pass and the fail region and
    is wider than 2*tolerance; otherwise the point estimate decides.
    """
    if mode not in SLOPE_MODES:
        raise MinmaxlabError(f"mode must be one of {SLOPE_MODES}, got {mode!r}")
    predicted = _finite("predicted", predicted)
    tolerance = _finite("tolerance", tolerance)
    if tolerance < 0:
        raise MinmaxlabError(f"tolerance must be >= 0, got {tolerance}")
    slope, lo, hi = float(fit.slope), float(fit.ci_low), float(fit.ci_high)
    rule = _slope_rule(mode, predicted, tolerance)
    pred_text = {"close": f"slope = {predicted:g} +/- {tolerance:g}",
                 "at_most": f"slope <= {predicted:g} (tol {tolerance:g})",
                 "at_least": f"slope >= {predicted:g} (tol {tolerance:g})"}[mode]
    has_ci = math.isfinite(lo) and math.isfinite(hi)
    ci_text = f"[{_g(lo)}, {_g(hi)}]" if has_ci else "[no CI]"
    cmp = {"close": f"+/- {tolerance:g}", "at_most": f"+ {tolerance:g} (at most)",
           "at_least": f"- {tolerance:g} (at least)"}[mode]
    head = (f"slope {_g(slope)} {ci_text} vs predicted {predicted:g} {cmp}; "
            f"n={fit.n_points}, groups={fit.n_groups}")

    if math.isnan(slope):
        verdict, why = "inconclusive", "slope is nan"
    else:
        straddles = False
        if has_ci and lo <= hi:
            if mode == "close":
                meets_pass = lo <= predicted + tolerance and hi >= predicted - tolerance
                meets_fail = lo < predicted - tolerance or hi > predicted + tolerance
            else:
                meets_pass = rule(lo) or rule(hi)
                meets_fail = not (rule(lo) and rule(hi))
            straddles = meets_pass and meets_fail and (hi - lo) > 2 * tolerance
        if straddles:
            verdict = "inconclusive"
            why = f"CI width {_g(hi - lo)} > 2*tol and spans pass and fail regions"
        elif rule(slope):
            verdict, why = "pass", "point estimate meets the prediction"
        else:
            verdict, why = "fail", "point estimate misses the prediction"
    return Verdict(claim, setting, pred_text, slope, lo, hi, verdict, f"{head}: {why}")


def check_bound(claim: str, setting: str, measured_curve, bound_curve, slack: float = 1.0) -> Verdict:
    """Pass if max(measured / bound) <= slack over the entries where both curves are finite.

    A zero bound gives ratio 0 if measured <= 0 else inf; a negative bound raises.
    """
    m, b = _pair(measured_curve, bound_curve, "measured_curve", "bound_curve")
    slack = _finite("slack", slack)
    ok = np.isfinite(m) & np.isfinite(b)
    pred_text = f"measured/bound <= {slack:g}"
    if not ok.any():
        return Verdict(claim, setting, pred_text, math.nan, math.nan, math.nan, "inconclusive",
                       f"no finite entries among {m.size} (measured, bound) pairs")
    if (b[ok] < 0).any():
        raise MinmaxlabError("bound_curve must be non-negative where finite")
    pos = np.flatnonzero(ok)
    mm, bb = m[ok], b[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bb > 0, mm / np.where(bb > 0, bb, 1.0), np.where(mm <= 0, 0.0, math.inf))
    k = int(np.argmax(ratio))
    worst = float(ratio[k])
    verdict = "pass" if worst <= slack else "fail"
    rel = "<=" if verdict == "pass" else ">"
    reason = (f"max measured/bound {_g(worst)} at index {int(pos[k])} (measured {_g(mm[k])}, bound "
              f"{_g(bb[k])}; {ok.sum()} of {m.size} finite entries) {rel} slack {slack:g}")
    return Verdict(claim, setting, pred_text, worst, math.nan, math.nan, verdict, reason)


def _check_threshold(claim, setting, measured, threshold, predicted_text, at_most: bool) -> Verdict:
    measured = _real("measured", measured)
    threshold = _real("threshold", threshold)
    if math.isnan(threshold):
        raise MinmaxlabError("threshold must not be nan")
    op, bad = ("<=", ">") if at_most else (">=", "<")
    if math.isnan(measured):
        verdict, reason = "inconclusive", f"measured is nan (threshold {_g(threshold)})"
    else:
        ok = measured <= threshold if at_most else measured >= threshold
        verdict = "pass" if ok else "fail"
        reason = f"measured {_g(measured)} {op if ok else bad} threshold {_g(threshold)}"
    return Verdict(claim, setting, str(predicted_text), measured, math.nan, math.nan, verdict, reason)


def check_at_most(claim: str, setting: str, measured: float, threshold: float,
                  predicted_text: str) -> Verdict:
    """Pass if measured <= threshold; nan measured is inconclusive."""
    return _check_threshold(claim, setting, measured, threshold, predicted_text, at_most=True)


def check_at_least(claim: str, setting: str, measured: float, threshold: float,
                   predicted_text: str) -> Verdict:
    """Pass if measured >= threshold; nan measured is inconclusive."""
    return _check_threshold(claim, setting, measured, threshold, predicted_text, at_most=False)


def check_ordering(claim: str, setting: str, labels: list[str], values: list[float],
                   increasing: bool = True, rel_tol: float = 0.0) -> Verdict:
    """Pass if values are non-strictly monotone in label order; measured = violated adjacent pairs.

    Adjacent finite values within rel_tol * max(|a|, |b|) count as ties; any nan is inconclusive.
    """
    labels = [str(s) for s in labels]
    vals = [_real(f"values[{i}]", v) for i, v in enumerate(values)]
    if len(labels) != len(vals):
        raise MinmaxlabError(f"labels and values must have the same length, got {len(labels)} and "
                             f"{len(vals)}")
    if not vals:
        raise MinmaxlabError("values must not be empty")
    rel_tol = _finite("rel_tol", rel_tol)
    if rel_tol < 0:
        raise MinmaxlabError(f"rel_tol must be >= 0, got {rel_tol}")
    sym = "<=" if increasing else ">="
    pred_text = f"{'non-decreasing' if increasing else 'non-increasing'}: {f' {sym} '.join(labels)}"
    if rel_tol:
        pred_text += f" (rel_tol {rel_tol:g})"
    violated = []
    for i in range(len(vals) - 1):
        (la, a), (lb, b) = (labels[i], vals[i]), (labels[i + 1], vals[i + 1])
        if math.isnan(a) or math.isnan(b):
            continue
        tie = math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rel_tol * max(abs(a), abs(b))
        if not tie and (b < a if increasing else b > a):
            violated.append(f"{la} {'>' if increasing else '<'} {lb}")
    listing = ", ".join(f"{la}={_g(v)}" for la, v in zip(labels, vals, strict=True))
    if any(math.isnan(v) for v in vals):
        verdict = "inconclusive"
        reason = f"nan among values: {listing}"
    else:
        verdict = "fail" if violated else "pass"
        reason = f"values in order: {listing}"
        reason += f"; violated: {', '.join(violated)}" if violated else "; monotone"
    return Verdict(claim, setting, pred_text, float(len(violated)), math.nan, math.nan, verdict, reason)


# ------------------------------------------------------------------------------- curve summaries

def first_crossing(x, y, eps: float, stay: bool = False) -> float:
    """First x (after sorting by x) with y <= eps; with stay=True the first x from which y stays <= eps.

    Points with non-finite x are dropped; nan y counts as above eps. Returns nan if never.
    """
    xa, ya = _pair(x, y)
    eps = _real("eps", eps)
    if math.isnan(eps):
        raise MinmaxlabError("eps must not be nan")
    ok = np.isfinite(xa)
    xa, ya = xa[ok], ya[ok]
    order = np.argsort(xa, kind="stable")
    xa, ya = xa[order], ya[order]
    below = ya <= eps  # nan -> False
    if not below.any():
        return math.nan
    if not stay:
        return float(xa[np.argmax(below)])
    if not below[-1]:
        return math.nan
    above = np.flatnonzero(~below)
    return float(xa[above[-1] + 1]) if above.size else float(xa[0])


def steady_state(df: pd.DataFrame, x: str, y: str, fraction: float = 0.5, group: str | None = None):
    """Mean of y over the rows with x >= x_max - fraction * (x_max - x_min); per group if given.

    Returns a float, or a Series indexed by group. Rows with nan x or y are ignored.
    """
    if not isinstance(df, pd.DataFrame):
        raise MinmaxlabError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    for arg, col in (("x", x), ("y", y), ("group", group)):
        if col is not None and col not in df.columns:
            raise MinmaxlabError(f"{arg}: column {col!r} is not in df (columns: {list(df.columns)})")
    fraction = _real("fraction", fraction)
    if not 0.0 < fraction <= 1.0:
        raise MinmaxlabError(f"fraction must be in (0, 1], got {fraction}")

    def tail_mean(sub: pd.DataFrame) -> float:
        xs = pd.to_numeric(sub[x], errors="coerce").to_numpy(dtype=float)
        ys = pd.to_numeric(sub[y], errors="coerce").to_numpy(dtype=float)
        ok = ~np.isnan(xs) & ~np.isnan(ys)
        xs, ys = xs[ok], ys[ok]
        if xs.size == 0:
            return math.nan
        lo, hi = xs.min(), xs.max()
        return float(ys[xs >= hi - fraction * (hi - lo)].mean())

    if group is None:
        return tail_mean(df)
    out = {k: tail_mean(sub) for k, sub in df.groupby(group, sort=True)}
    return pd.Series(out, name=y, dtype=float).rename_axis(group)


# ---------------------------------------------------------------------------------------- tables

_COLUMNS = tuple(f.name for f in fields(Verdict))


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """A DataFrame with one row per verdict and the Verdict fields as columns."""
    return pd.DataFrame([v.as_dict() for v in verdicts], columns=list(_COLUMNS))


def format_verdicts(verdicts: list[Verdict]) -> str:
    """An aligned plain-text table: claim, setting, predicted, measured [ci], verdict, control
    verdict, reason."""
    head = ["claim", "setting", "predicted", "measured", "verdict", "control", "reason"]
    rows = []
    for v in verdicts:
        meas = _g(v.measured)
        if math.isfinite(v.ci_low) and math.isfinite(v.ci_high):
            meas += f" [{_g(v.ci_low)}, {_g(v.ci_high)}]"
        ctrl = f"{v.control_verdict} ({v.control})" if v.control else "-"
        rows.append([str(v.claim), str(v.setting), str(v.predicted), meas, v.verdict, ctrl,
                     str(v.reason)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = []
    for r in [head, ["-" * w for w in widths] + ["-" * len(head[-1])], *rows]:
        lines.append("  ".join([c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)] + [r[-1]]).rstrip())
    return "\n".join(lines)
