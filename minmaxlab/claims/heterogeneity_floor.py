"""C9 (new): with a fixed number t of gossip rounds, DPOSG on workers that differ at the solution
stalls at a floor, and the floor falls with t like (rho^t)^p, p = 2.

Why p = 2: at DPOSG's fixed point the averages are stationary, so the mean of the local steps
vanishes while each worker keeps pulling towards its own solution: worker i's step carries
eta b_i (the heterogeneity, (1/M) sum ||b_i||^2 = zeta^2), and t rounds of gossip shrink the
disagreement it creates by rho^t per iteration. The disagreement settles where injection and
contraction balance, ||Z - 1 zbar|| ~ eta zeta rho^t / (1 - rho^t), so the workers'
stationarity (1/M) sum_i ||F(z_i)||^2 <= L^2 (1/M) ||Z - 1 zbar||^2 ~ (eta L zeta)^2 rho^(2t)
for large t: a power p = 2 of rho^t (the paper's consensus term, squared norms).

Runs: sigma = 0, heterogeneous workers, DPOSG with a grid of t on two topologies, and CPOSG.
Measured: the floor (mean of the workers' stationarity over the last ``fraction`` of each run);
the exponent p = slope(log floor vs t) / log rho, fitted over the t where rho^(2t) <= 0.1 (the
slowest eigenvector dominates) and the floor is above ``rounding``. Checks: p within
``tolerance`` (relative) of ``predicted``; and the floor at the smallest t is at least
``separation`` times CPOSG's level (DPOSG and CPOSG differ here). Reported: the same exponent on
the average's stationarity and on the paper's measure ||(1/M) sum_i F_i(z_i)||^2, which is 0 at
DPOSG's fixed point whatever the disagreement (the averages are stationary there). Negative
control: the single-exchange variant, whose floor does not fall with t.
"""

from __future__ import annotations

import math

import pandas as pd

from minmaxlab import rates
from minmaxlab.claims.base import Claim, inconclusive, reported, rho_text, setting, steady


def _exponent(g, rho, rounding):
    t_lo = math.log(10) / (2 * math.log(1 / rho))
    use = g[(g["rounds"] >= t_lo) & (g["value"] > rounding)]
    if use["rounds"].nunique() < 2:
        return None, use
    return rates.fit_slope(use, "rounds", "value", group="seed", log_x=False), use


def analyse(table, spec, study):
    pred = float(spec.get("predicted", 2.0))
    tol = float(spec["tolerance"])
    frac = float(spec.get("fraction", 0.25))
    rounding = float(spec.get("rounding", 1e-26))
    sep = float(spec.get("separation", 1e6))
    df = table
    keys = ["topology", "topology_spec", "workers", "rho", "rounds", "algorithm", "seed", "label"]
    verdicts, out = [], []
    ref_runs = df[df["algorithm"] == "cposg"]
    ref = float(steady(ref_runs, "stationarity_workers", frac, keys)["value"].median()) \
        if len(ref_runs) else math.nan
    dp = df[df["algorithm"] != "cposg"]
    for (_, M), g in dp.groupby(["topology_spec", "workers"]):
        name = g["topology"].iloc[0]
        rho = float(g["rho"].iloc[0])
        where = f"{name} M={M}, rho={rho_text(rho)}, {g['algorithm'].iloc[0]}"
        if not 0.0 < rho < 1.0:
            verdicts.append(inconclusive(spec, study, f"rho = {rho:g}: no power of rho^t to fit",
                                         where))
            continue
        for col in ("stationarity_workers", "stationarity_avg", "stationarity_local"):
            pts = steady(g, col, frac, keys)
            pts["measure"] = col
            out.append(pts)
            fit, use = _exponent(pts, rho, rounding)
            if col != "stationarity_workers":
                p = fit.slope / math.log(rho) if fit else math.nan
                verdicts.append(reported(spec, study, f"{where}, {col}", p,
                                         f"exponent of rho^t in the floor of {col}: {p:.3g}"))
                continue
            if fit is None:
                verdicts.append(inconclusive(spec, study, "fewer than 2 values of t with "
                                             f"rho^(2t) <= 0.1 and floor > {rounding:g}",
                                             f"{where}, exponent"))
            else:
                p = fit.slope / math.log(rho)
                lo, hi = (fit.ci_high / math.log(rho), fit.ci_low / math.log(rho))
                ok = abs(p - pred) <= tol * pred
                span = f"t = {int(use['rounds'].min())}..{int(use['rounds'].max())}"
                verdicts.append(rates.Verdict(
                    spec["claim"], setting(study, f"{where}, exponent over {span}"),
                    f"floor ~ (rho^t)^p, p = {pred:g} +/- {tol:.0%}", p, lo, hi,
                    "pass" if ok else "fail",
                    f"fitted p = {p:.3f} from slope {fit.slope:.4f} of log floor vs t "
                    f"({fit.n_groups} seeds)"))
            verdicts.append(_separation(pts, ref, sep, rounding, spec, study, where))
    return verdicts, pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _separation(pts, ref, sep, rounding, spec, study, where):
    """DPOSG's floor at the smallest t against CPOSG's level: the two must differ here."""
    t1 = int(pts["rounds"].min())
    small = float(pts[pts["rounds"] == t1]["value"].median())
    where = setting(study, f"{where}, floor at t={t1} vs CPOSG")
    text = f"DPOSG's floor >= {sep:g} x CPOSG's level"
    if not math.isfinite(ref):
        return rates.Verdict(spec["claim"], where, text, math.nan, math.nan, math.nan,
                             "inconclusive", "no CPOSG level to compare with")
    ratio = small / ref if ref > 0 else (math.inf if small > rounding else 0.0)
    return rates.check_at_least(spec["claim"], where, ratio, sep, f"{text} ({ref:.2g})")


def figure(pts, table, folder):
    from minmaxlab import plotting as P

    fig, ax = P.new_figure("C9: heterogeneity floor vs gossip rounds t")
    main = pts[pts["measure"] == "stationarity_workers"]
    seeds = 1
    for k, ((name, M), g) in enumerate(main.groupby(["topology", "workers"])):
        med, lo, hi, n = P.over_seeds(g, "rounds", "value")
        seeds = max(seeds, n)
        rho = float(g["rho"].iloc[0])
        c = P.COLORS[k % 10]
        ax.semilogy(med.index, med.to_numpy(), "o-", color=c, ms=3, label=f"{name} $M$={M} "
                    f"($\\rho$={rho_text(rho)})")
        P.band(ax, lo, hi, c, n)
        t = med.index.to_numpy(dtype=float)
        ax.semilogy(t, med.iloc[-1] * rho ** (2 * (t - t[-1])), "--", color=c, lw=0.8)
    ax.plot([], [], "k--", lw=0.8, label="$(\\rho^t)^2$ (predicted)")
    P.band_legend(ax, seeds)
    ax.set_xlabel("gossip rounds per iteration $t$")
    ax.set_ylabel("floor of $\\frac{1}{M}\\sum_i \\|F(z_i)\\|^2$")
    return P.finish(fig, ax)


CLAIM = Claim("heterogeneity_floor", ("claim", "tolerance"), analyse, figure,
              optional=("fraction", "predicted", "rounding", "separation"),
              experiments=("trajectory",))
