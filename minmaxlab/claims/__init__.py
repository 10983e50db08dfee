"""The claims of ALGORITHM.md, one module each: what it needs from the runs (the study file),
its analysis, its figure and its negative control.

    C1 mean_dynamics   C2 consensus    C3 rate          C4 noise_floor     C5 speedup
    C6 rounds_needed   C7 limits       C8 boundary      C9 heterogeneity_floor
    C10 final_level (tracking), accelerated_gossip, variance_reduction
    C11 (time-varying graphs) final_level
    local steps local_steps     the methods side by side: comparison (reports only)
    wallclock          GAN gan, gan_rounds (reports only)   C13 (non-iid GAN) gan

A study's ``[[claims]]`` entry names an analysis; its ``[[controls]]`` entries name settings in
which the claim is false. :func:`evaluate` runs one analysis on the claim's runs and on every
control's runs, and :func:`attach_controls` writes each control's verdict beside the claim's rows:
a control must FAIL, and a control that passes turns the claim's checks into failures (the check
could not have come out the other way).
"""

from __future__ import annotations

from minmaxlab.claims import (
    accelerated_gossip,
    boundary,
    comparison,
    consensus,
    final_level,
    gan,
    gan_rounds,
    heterogeneity_floor,
    limits,
    local_steps,
    mean_dynamics,
    noise_floor,
    rate,
    rounds_needed,
    speedup,
    variance_reduction,
    wallclock,
)
from minmaxlab.claims.base import Claim

__all__ = ["CLAIMS", "Claim", "attach_controls", "control_verdict", "evaluate",
           "worst_control_verdict"]

CLAIMS: dict[str, Claim] = {
    m.CLAIM.name: m.CLAIM
    for m in (mean_dynamics, consensus, rate, noise_floor, speedup, rounds_needed, limits, boundary,
              heterogeneity_floor, final_level, accelerated_gossip, local_steps, variance_reduction,
              wallclock, gan, gan_rounds, comparison)
}

DECIDING = ("pass", "fail", "inconclusive")


def control_verdict(verdicts) -> str:
    """The claim's verdict on a control's runs: "fail" if any deciding check fails (the control
    contradicts the claim, as it must), "pass" if all pass, "inconclusive" otherwise."""
    got = [v.verdict for v in verdicts if v.verdict in DECIDING]
    if "fail" in got:
        return "fail"
    if got and all(g == "pass" for g in got):
        return "pass"
    return "inconclusive"


CONTROL_ORDER = ("pass", "inconclusive", "fail", "not run")  # worst first: a passing control


def worst_control_verdict(verdicts) -> str:
    """The verdict that speaks for several controls: any that passed ("pass", the check cannot
    fail), else any inconclusive, else "fail"; "not run" only when none ran."""
    got = set(verdicts)
    return next((x for x in CONTROL_ORDER if x in got), "not run")


def attach_controls(verdicts, controls: dict[str, str]) -> None:
    """Write ``controls`` (control name -> its verdict) beside every row of ``verdicts``; a
    control that did not fail makes each deciding row fail or inconclusive ("not run": a control
    that could not run here, e.g. one tied to built-in instances on a user's game)."""
    if not controls:
        return
    names = ", ".join(sorted(controls))
    worst = worst_control_verdict(controls.values())
    for v in verdicts:
        v.control = names
        v.control_verdict = worst
        if v.verdict not in DECIDING or worst in ("fail", "not run"):
            continue
        if worst == "pass":
            v.verdict = "fail"
            v.reason = f"its control passed too ({names}), so the check cannot fail; " + v.reason
        elif v.verdict == "pass":
            v.verdict = "inconclusive"
            v.reason = f"its control was inconclusive ({names}); " + v.reason


def evaluate(spec: dict, tables: dict, study):
    """Verdicts and points of the [[claims]] entry ``spec``: ``tables`` maps the role ("claim" or
    a control's name) to its rows. Returns (claim verdicts with controls attached, points, the
    controls' own verdicts)."""
    claim = CLAIMS[spec["analysis"]]
    verdicts, points = claim.run(tables.get("claim"), spec, study)
    outcome, own = {}, []
    for ctrl in study.controls:
        if spec["claim"] not in ctrl.get("checks", [spec["claim"]]):
            continue
        cspec = {**spec, **ctrl.get("claim_params", {})}
        cv, _ = claim.run(tables.get(ctrl["name"]), cspec, study)  # no runs: inconclusive
        for v in cv:
            v.setting = f"{v.setting} [control {ctrl['name']}]"
        outcome[ctrl["name"]] = control_verdict(cv)
        own.extend(cv)
    for ctrl in getattr(study, "dropped_controls", []):
        if spec["claim"] in ctrl.get("checks", [spec["claim"]]):
            outcome[ctrl["name"] + " (not run on a user's game)"] = "not run"
    attach_controls(verdicts, outcome)
    return verdicts, points, own
