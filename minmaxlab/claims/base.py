"""What every claim module shares: the :class:`Claim` record and the small table helpers.

A claim module holds one claim of ALGORITHM.md: ``analyse(table, spec, study)`` turns the study's
tidy table into :class:`~minmaxlab.rates.Verdict` rows and a points table, ``figure(points,
table, folder)`` draws it, and its docstring says what its negative control is. Predicted
values and tolerances come from the study file and are never adjusted here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from minmaxlab import rates
from minmaxlab.errors import ConfigError, reject_unknown


@dataclass(frozen=True)
class Claim:
    """One analysis: its name in study files, the keys its [[claims]] entry must give, the
    analysis and its figure (None: no figure)."""

    name: str
    required: tuple
    analyse: Callable
    figure: Callable | None = None
    # a diverged run: "fails" the claim (a method that should converge), is dropped as a rejected
    # candidate ("drop", e.g. a step size of a grid search), or is an outcome the analysis reads
    # ("keep"); the analyses see only the runs they are meant to
    divergence: str = "fails"
    optional: tuple = ()  # the other keys its [[claims]] entry may give
    experiments: tuple = ("trajectory",)  # what the study's cells must run for it
    decides: bool = True  # False: an analysis that only reports (a comparison of methods)

    def validate(self, path, k, spec, experiment="trajectory"):
        """Keys known to this analysis, with the types it reads them as; the right experiment."""
        where = f"{path}: claims[{k}] ({self.name})"
        missing = [r for r in self.required if r not in spec]
        if missing:
            raise ConfigError(f"{where} is missing {missing}")
        allowed = {"claim", "analysis", *self.required, *self.optional}
        reject_unknown(where, spec, allowed)
        if experiment not in self.experiments:
            raise ConfigError(f"{where} reads the runs of experiment {' or '.join(self.experiments)}"
                              f", but the study's experiment is {experiment!r}")
        for key, value in spec.items():
            kind = KEY_TYPES.get(key)
            if kind is not None and not kind[0](value):
                raise ConfigError(f"{where}.{key} must be {kind[1]}, got {value!r}")

    def run(self, table, spec, study):
        """Verdicts and points of the analysis; never an empty verdict list (a claim that cannot
        be decided says so), and a diverged run of a method that should converge is a failure."""
        if table is None or len(table) == 0:
            return [inconclusive(spec, study, "no runs")], pd.DataFrame()
        verdicts = []
        bad = diverged_runs(table) if self.divergence != "keep" else []
        if self.divergence == "fails" and bad:
            col = "label" if "label" in table else "run_id"
            labels = sorted(set(table[table["run_id"].isin(bad)][col].astype(str)))
            verdicts.append(rates.Verdict(
                spec["claim"], setting(study, "divergence"), "every run converges or settles",
                float(len(bad)), math.nan, math.nan, "fail",
                f"{len(bad)} run(s) diverged: {', '.join(labels)}"))
        if bad:
            table = table[~table["run_id"].isin(bad)]
        points = pd.DataFrame()
        if len(table):
            more, points = self.analyse(table, spec, study)
            verdicts += more
        if self.decides and not any(v.verdict in ("pass", "fail", "inconclusive") for v in verdicts):
            verdicts.append(inconclusive(spec, study, "the runs leave nothing to decide on"))
        return verdicts, points


def inconclusive(spec, study, why, extra="", predicted="-") -> rates.Verdict:
    return rates.Verdict(spec["claim"], setting(study, extra), predicted, math.nan, math.nan,
                         math.nan, "inconclusive", why)


def reported(spec, study, extra, measured, text) -> rates.Verdict:
    """A number shown beside the verdicts that does not decide one (e.g. the other measure)."""
    return rates.Verdict(spec["claim"], setting(study, extra), "reported, not a check", measured,
                         math.nan, math.nan, "reported", text)


def diverged_runs(df: pd.DataFrame) -> list:
    """Ids of the runs that stopped as diverged (only their last row says so)."""
    if "status" not in df:
        return []
    return sorted(df.loc[df["status"] != "ok", "run_id"].unique())


def rho_text(rho: float) -> str:
    """rho for a label: three decimals, or 1 - (the gap) when three decimals would say 1.000."""
    return f"{rho:.3f}" if rho < 0.9995 else f"1 - {1.0 - rho:.2g}"


def setting(study, extra="") -> str:
    return f"{study.name}{'' if not extra else ': ' + extra}"


def steady(df: pd.DataFrame, metric: str, fraction: float, keys: list[str]) -> pd.DataFrame:
    """One row per run: its ``keys`` and ``value``, the mean of ``metric`` over the last
    ``fraction`` of the run's recorded iterations."""
    out = []
    for rid, g in df.groupby("run_id"):
        g = g.sort_values("iteration")
        kmax = g["iteration"].max()
        tail = g[g["iteration"] >= (1 - fraction) * kmax]
        out.append({"run_id": rid, "value": float(tail[metric].mean())})
    first = df.drop_duplicates("run_id")[["run_id", *keys]]
    return first.merge(pd.DataFrame(out), on="run_id")


def iterations_to_eps(g: pd.DataFrame, metric: str, eps: float, smooth: int) -> float:
    """First recorded iteration where the rolling median (over ``smooth`` records) of ``metric``
    is <= eps; nan if never."""
    g = g.sort_values("iteration")
    y = g[metric].rolling(smooth, center=True, min_periods=1).median()
    return rates.first_crossing(g["iteration"].to_numpy(), y.to_numpy(), eps)


def at_eps(g: pd.DataFrame, metric: str, eps: float, smooth: int, columns) -> dict:
    """The values of ``columns`` in one run's rows at the record where ``metric`` first reaches
    eps (:func:`iterations_to_eps`); nan for each if it never does."""
    k = iterations_to_eps(g, metric, eps, smooth)
    row = g[g["iteration"] == k]
    return {c: float(row[c].iloc[0]) if len(row) else math.nan for c in columns}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer_at_least(n: int):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= n,
            f"an integer >= {n}")


def _pair(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_number(x) for x in v) and v[0] <= v[1]


KEY_TYPES = {
    **{k: (lambda v: _number(v) and v >= 0, "a number >= 0") for k in (
        "tolerance", "threshold", "level", "delta", "accuracy", "rounding", "separation",
        "grad_time", "min_high_quality", "max_frechet", "max_distance")},
    **{k: (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1)") for k in ("eps", "fraction")},
    "predicted": (_number, "a number"),
    "power_law": (lambda v: isinstance(v, bool), "true or false"),
    "max_sum_growth": (_number, "a number"),
    "smooth": _integer_at_least(1),
    "min_modes": _integer_at_least(0),
    "model_floats": _integer_at_least(1),
    "window": (_pair, "a pair [lo, hi] of numbers with lo <= hi"),
    "alpha_range": (_pair, "a pair [lo, hi] of exponents"),
    "beta_range": (_pair, "a pair [lo, hi] of exponents"),
    "eps_table": (lambda v: isinstance(v, list) and all(_number(x) and 0 < x < 1 for x in v),
                  "a list of numbers in (0, 1)"),
    "metric": (lambda v: isinstance(v, str), "a column name"),
    "gossip": (lambda v: v in ("plain", "chebyshev"), '"plain" or "chebyshev"'),
    "expect": (lambda v: isinstance(v, dict) and all(
        set(str(x).split(" or ")) <= {"converge", "cycle", "diverge"} for x in v.values()),
        'a table of problem = "converge" | "cycle" | "diverge"'),
}
