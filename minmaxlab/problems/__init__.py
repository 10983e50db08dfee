"""The problem library: families with certified constants, named instances, user games.

    >>> import minmaxlab as mml
    >>> prob = mml.problem("minty_bowl", workers=16, dim=20, seed=0)

``problem(name_or_family, workers=..., **params)`` looks ``name_or_family`` up among the named
instances (TOML files in the project's ``problems/`` folder, or a path to a TOML file) and then among
the family keys; ``params`` override the instance's parameters.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np

from minmaxlab.errors import ConfigError, ProblemError, read_toml
from minmaxlab.problems.base import Noise, Problem
from minmaxlab.problems.covariance import CovarianceWGAN
from minmaxlab.problems.linear import (
    BilinearGame,
    MintyBowl,
    StronglyMonotoneQuadratic,
    WeakMVIQuadratic,
)
from minmaxlab.problems.planar import DiracGAN, Forsaken, GlobalForsaken, PolarGame

FAMILIES: dict[str, type[Problem]] = {
    cls.family: cls
    for cls in (BilinearGame, StronglyMonotoneQuadratic, MintyBowl, WeakMVIQuadratic, Forsaken,
                GlobalForsaken, PolarGame, DiracGAN, CovarianceWGAN)
}
# families with certified constants (the GAN, below, declares none)
CERTIFIED = dict(FAMILIES)

from minmaxlab.gan import GAN  # noqa: E402  (needs the base classes above)

FAMILIES[GAN.family] = GAN

from minmaxlab.problems.data import (  # noqa: E402  (families without certified constants)
    DRORegression,
    FairClassification,
    RobustRegression,
)

for _cls in (RobustRegression, DRORegression, FairClassification):
    FAMILIES[_cls.family] = _cls

_REQUIRED = ("name", "family", "reference")
_ALLOWED_TOP = {"name", "family", "description", "reference", "seed", "workers", "params",
                "claimed"}
_CLAIM_KEYS = {"L", "mvi", "r_min"}


def instance_dirs() -> list[Path]:
    """Folders searched for named instances: $MINMAXLAB_PROBLEMS, then the project's problems/."""
    dirs = []
    env = os.environ.get("MINMAXLAB_PROBLEMS")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(Path(__file__).resolve().parents[2] / "problems")
    return [d for d in dirs if d.is_dir()]


def instance_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for d in reversed(instance_dirs()):  # earlier folders win
        for f in sorted(d.glob("*.toml")):
            files[f.stem] = f
    return files


def family_params(family: str) -> list[str]:
    cls = FAMILIES[family]
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name")]


def load_instance(path: str | Path) -> dict:
    """Read and validate one instance file; returns its content as a dict."""
    path = Path(path)
    data = read_toml(path, "problem instance file")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"{path}: incomplete problem instance, missing key(s) {missing} "
                          f"(required: {list(_REQUIRED)})")
    unknown = sorted(set(data) - _ALLOWED_TOP)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(_ALLOWED_TOP)}")
    if data["family"] not in FAMILIES:
        raise ConfigError(f"{path}: unknown family {data['family']!r}; "
                          f"families: {sorted(FAMILIES)}")
    if not isinstance(data.get("params", {}), dict) or not isinstance(data.get("claimed", {}), dict):
        raise ConfigError(f"{path}: [params] and [claimed] must be tables")
    bad_claims = sorted(set(data.get("claimed", {})) - _CLAIM_KEYS)
    if bad_claims:
        raise ConfigError(f"{path}: unknown claimed constant(s) {bad_claims}; "
                          f"allowed: {sorted(_CLAIM_KEYS)}")
    data["_path"] = str(path)
    return data


def _build(family: str, label: str, workers, params: dict) -> Problem:
    cls = FAMILIES[family]
    allowed = family_params(family)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ProblemError(f"{label}: unknown parameter(s) {unknown} for family {family!r}; "
                           f"allowed: {allowed}")
    return cls(workers=workers, name=label, **params)


def check_claims(prob: Problem, claimed: dict, where: str, rtol: float = 1e-5) -> None:
    """Raise ProblemError if the family's constants contradict an instance's claims."""
    if "mvi" in claimed and claimed["mvi"] != prob.mvi:
        raise ProblemError(f"{where}: claims mvi = {claimed['mvi']!r} but the family declares "
                           f"{prob.mvi!r}")
    for key in ("L", "r_min"):
        if key not in claimed:
            continue
        have = getattr(prob, key)
        want = float(claimed[key])
        if have is None or not np.isclose(have, want, rtol=rtol, atol=0.0):
            raise ProblemError(f"{where}: claims {key} = {want} but the family declares {have}")


def problem(name_or_family: str, workers: int | None = None, **params) -> Problem:
    """Build a named instance (or a family with its defaults), overriding ``params``."""
    if not isinstance(name_or_family, str):
        raise ProblemError(f"problem name must be a string, got {name_or_family!r}")
    files = instance_files()
    key = name_or_family
    path = None
    if key.endswith(".toml") or os.sep in key:
        path = Path(key)
    elif key in files:
        path = files[key]
    if path is not None:
        inst = load_instance(path)
        merged = dict(inst.get("params", {}))
        if "seed" in inst:
            merged.setdefault("seed", inst["seed"])
        overridden = {k for k in params if merged.get(k, object()) != params[k]}
        merged.update(params)
        if workers is None:
            workers = inst.get("workers", 1)
        prob = _build(inst["family"], inst["name"], workers, merged)
        if not overridden:
            check_claims(prob, inst.get("claimed", {}), str(path))
        prob.reference = inst["reference"]
        prob.description = inst.get("description", "")
        return prob
    if key in FAMILIES:
        return _build(key, key, 1 if workers is None else workers, params)
    raise ProblemError(f"unknown problem {key!r}; named instances: {sorted(files)}; "
                       f"families: {sorted(FAMILIES)}")


def catalog() -> list[dict]:
    """Every named instance with its declared constants (built with one worker)."""
    rows = []
    for stem, path in instance_files().items():
        prob = problem(str(path))
        c = prob.constants()
        c["instance"] = stem
        c["reference"] = prob.reference
        rows.append(c)
    return rows


def format_catalog(rows: list[dict] | None = None) -> str:
    rows = catalog() if rows is None else rows
    head = f"{'instance':<28}{'family':<20}{'dim':>5}{'L':>10}  {'Lipschitz on':<16}{'MVI':<10}" \
           f"{'r_min':>9}  z*"
    lines = [head, "-" * len(head)]
    for r in rows:
        where = "R^d" if r["lipschitz"] == "global" else f"[{r['box'][0]:g},{r['box'][1]:g}]^d"
        rmin = "" if r["r_min"] is None else f"{r['r_min']:.4f}"
        lines.append(f"{r['instance']:<28}{r['family']:<20}{r['dim']:>5}{r['L']:>10.4f}  "
                     f"{where:<16}{r['mvi']:<10}{rmin:>9}  {'known' if r['solution_known'] else '-'}")
    return "\n".join(lines)


def certify(prob: Problem, pairs: int = 4000, points: int = 200, seed: int = 0) -> dict:
    """Measure the declared constants by sampling the problem's box.

    Returns the largest difference quotient over random pairs (``L_pairs``; must not exceed L),
    the largest Jacobian norm at random points (``L_jacobian``; how tight L is), the smallest sampled
    Minty ratio (``r_sampled``), max ||F - mean F_i|| and ||F(z*)||.
    """
    rng = np.random.default_rng(seed)
    Z1 = prob.sample_box(rng, pairs)
    # half the pairs are far apart, half are close (difference quotients near the Jacobian norm)
    Z2 = prob.sample_box(rng, pairs)
    close = np.arange(pairs) % 2 == 1
    lo, hi = prob.box
    step = 1e-3 * (hi - lo) * rng.standard_normal((pairs, prob.dim))
    Z2[close] = np.clip(Z1[close] + step[close], lo, hi)
    dz = np.linalg.norm(Z1 - Z2, axis=1)
    ok = dz > 1e-12
    dF = np.linalg.norm(prob.F(Z1) - prob.F(Z2), axis=1)
    L_pairs = float(np.max(dF[ok] / dz[ok]))
    L_pairs_local = 0.0
    for i in range(min(prob.workers, 8)):
        dFi = np.linalg.norm(prob.F_i(i, Z1) - prob.F_i(i, Z2), axis=1)
        L_pairs_local = max(L_pairs_local, float(np.max(dFi[ok] / dz[ok])))
    P = prob.sample_box(rng, points)
    corners = np.where(rng.random((points // 4, prob.dim)) < 0.5, lo, hi)
    corners = np.vstack([lo, hi, corners])  # the two extreme corners, then random ones
    L_jac = max(float(np.linalg.norm(prob.jacobian(z), 2)) for z in np.vstack([P, corners]))
    out = {
        "name": prob.name,
        "L": prob.L,
        "L_pairs": L_pairs,
        "L_local": prob.L_local,
        "L_pairs_local": L_pairs_local,
        "L_jacobian": L_jac,
        "tightness": max(L_jac, L_pairs) / prob.L,
        "mean_gap": float(np.max(np.abs(prob.F(Z1[:200]) - prob.F_mean_of_locals(Z1[:200])))),
    }
    if prob.solution is not None:
        out["F_at_solution"] = float(np.linalg.norm(prob.F(prob.solution)))
        r = prob.minty_ratio(np.vstack([Z1, Z2]))
        out["r_sampled"] = float(np.min(r[np.isfinite(r)]))
    return out


__all__ = [
    "FAMILIES", "Noise", "Problem", "BilinearGame", "StronglyMonotoneQuadratic", "MintyBowl",
    "WeakMVIQuadratic", "Forsaken", "GlobalForsaken", "PolarGame", "DiracGAN", "CovarianceWGAN",
    "problem", "catalog", "format_catalog", "certify", "load_instance", "instance_files",
    "family_params", "check_claims", "RobustRegression", "DRORegression", "FairClassification",
]
