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

from minmaxlab import userspec
from minmaxlab.errors import ConfigError, ProblemError, did_you_mean, read_toml
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
_CLAIM_KEYS = {"L", "mvi", "r_min", "zeta2"}
CATALOG_WORKERS = 8


def instance_dirs() -> list[Path]:
    """Folders searched for named instances: $MINMAXLAB_PROBLEMS, then the instances that ship
    with the package (the project's problems/)."""
    from minmaxlab.shipped import shipped_dir

    dirs = []
    env = os.environ.get("MINMAXLAB_PROBLEMS")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    shipped = shipped_dir("problems")
    if shipped is not None:
        dirs.append(shipped)
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
        raise ProblemError(f"{label}: unknown parameter(s) {unknown}"
                           f"{did_you_mean(unknown[0], allowed)} for family {family!r}; "
                           f"allowed: {allowed}")
    try:
        return cls(workers=workers, name=label, **params)
    except MemoryError as exc:
        raise ProblemError(f"{label}: not enough memory for workers = {workers} with "
                           f"{params or 'the defaults'} ({exc})") from None


def check_claims(prob: Problem, claimed: dict, where: str, rtol: float = 1e-5) -> None:
    """Raise ProblemError if the family's constants contradict an instance's claims."""
    if "mvi" in claimed and claimed["mvi"] != prob.mvi:
        raise ProblemError(f"{where}: claims mvi = {claimed['mvi']!r} but the family declares "
                           f"{prob.mvi!r}")
    for key in ("L", "r_min", "zeta2"):
        if key not in claimed:
            continue
        have = getattr(prob, key)
        want = float(claimed[key])
        if have is None or not np.isclose(have, want, rtol=rtol, atol=0.0):
            raise ProblemError(f"{where}: claims {key} = {want} but the family declares {have}")


_USER_PROBLEMS: dict[tuple, Problem] = {}


def is_user_problem(name: str) -> bool:
    """True for a user's problem factory, ``FILE.py:FUNCTION`` or ``pkg.module:FUNCTION``."""
    return userspec.is_user_spec(name)


def _user_function(spec: str):
    key, fn = userspec.load(spec, "user problem", ProblemError, search=instance_dirs())
    if not callable(fn):
        raise ProblemError(f"user problem {spec!r}: {spec.rsplit(':', 1)[0]} has no function "
                           f"{spec.rsplit(':', 1)[1]!r}")
    return key, fn


def user_source(spec: str) -> Path | None:
    """The file that defines a user's factory (None if it cannot be found): its contents are part
    of a run's identity, so that editing the game never reuses results of the old one."""
    return userspec.source(spec, search=instance_dirs())


def user_problem(spec: str, workers: int = 1, seed: int = 0) -> Problem:
    """The Problem returned by a user's factory ``FUNCTION(workers, seed)``, named by ``spec`` =
    ``FILE.py:FUNCTION`` (a path, or a file in the problems folders) or ``pkg.module:FUNCTION``.
    The factory builds its game with ``Problem.from_operator`` or a library family. Built once per
    (spec, workers, seed) in a process, so that its kernels compile once."""
    workers = Problem._check_workers(spec, workers)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ProblemError(f"user problem {spec!r}: seed must be an integer, got {seed!r}")
    key, fn = _user_function(spec)
    cache_key = (key, fn.__name__, workers, int(seed))
    if cache_key not in _USER_PROBLEMS:
        try:
            prob = fn(workers, int(seed))
        except ProblemError:
            raise
        except Exception as exc:
            raise ProblemError(f"user problem {spec!r}: {fn.__name__}({workers}, {seed}) raised "
                               f"{type(exc).__name__}: {exc}") from None
        if not isinstance(prob, Problem):
            raise ProblemError(f"user problem {spec!r}: {fn.__name__} must return a minmaxlab "
                               f"Problem, got {type(prob).__name__}")
        if prob.workers != workers:
            raise ProblemError(f"user problem {spec!r}: asked for {workers} workers, "
                               f"{fn.__name__} returned a problem with {prob.workers}")
        prob.params = {**prob.params, "factory": spec, "seed": int(seed)}
        _USER_PROBLEMS[cache_key] = prob
    return _USER_PROBLEMS[cache_key]


def problem(name_or_family: str, workers: int | None = None, **params) -> Problem:
    """Build a named instance (or a family with its defaults), overriding ``params``; or a user's
    problem ``FILE.py:FUNCTION`` (see :func:`user_problem`; its only parameter is ``seed``)."""
    if not isinstance(name_or_family, str):
        raise ProblemError(f"problem name must be a string, got {name_or_family!r}")
    if is_user_problem(name_or_family):
        unknown = sorted(set(params) - {"seed"})
        if unknown:
            raise ProblemError(f"user problem {name_or_family!r}: unknown parameter(s) {unknown}; "
                               "a user's factory takes (workers, seed) only")
        return user_problem(name_or_family, 1 if workers is None else workers,
                            params.get("seed", 0))
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
            claimed = dict(inst.get("claimed", {}))
            if workers != inst.get("workers", 1):  # zeta^2 is claimed for the instance's workers
                claimed.pop("zeta2", None)
            check_claims(prob, claimed, str(path))
        prob.reference = inst["reference"]
        prob.description = inst.get("description", "")
        return prob
    if key in FAMILIES:
        return _build(key, key, 1 if workers is None else workers, params)
    raise ProblemError(f"unknown problem {key!r}{did_you_mean(key, [*files, *FAMILIES])}; "
                       f"named instances: {sorted(files)}; "
                       f"families: {sorted(FAMILIES)}")


def catalog() -> list[dict]:
    """Every named instance with its declared constants, built with the instance's own number of
    workers (``CATALOG_WORKERS`` if it names none, so that heterogeneity shows in zeta^2)."""
    rows = []
    for stem, path in instance_files().items():
        prob = problem(str(path), workers=load_instance(path).get("workers", CATALOG_WORKERS))
        c = prob.constants()
        c["instance"] = stem
        c["reference"] = prob.reference
        rows.append(c)
    return rows


def format_catalog(rows: list[dict] | None = None) -> str:
    rows = catalog() if rows is None else rows
    head = f"{'instance':<28}{'family':<20}{'dim':>5}{'L':>10}  {'Lipschitz on':<16}{'MVI':<10}" \
           f"{'r_min':>9}  {'z*':<6}{'M':>3}{'zeta^2':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        where = "R^d" if r["lipschitz"] == "global" else f"[{r['box'][0]:g},{r['box'][1]:g}]^d"
        rmin = "" if r["r_min"] is None else f"{r['r_min']:.4f}"
        zeta2 = "" if r.get("zeta2") is None else f"{r['zeta2']:.4g}"
        lines.append(f"{r['instance']:<28}{r['family']:<20}{r['dim']:>5}{r['L']:>10.4f}  "
                     f"{where:<16}{r['mvi']:<10}{rmin:>9}  {'known' if r['solution_known'] else '-':<6}"
                     f"{r['workers']:>3}{zeta2:>9}")
    return "\n".join(lines)


def certify(prob: Problem, pairs: int = 4000, points: int = 200, seed: int = 0) -> dict:
    """Measure the declared constants by sampling the problem's box.

    Returns the largest difference quotient over random pairs (``L_pairs``; must not exceed L),
    the largest Jacobian norm at random points (``L_jacobian``; how tight L is), the smallest sampled
    Minty ratio (``r_sampled``), max ||F - mean F_i|| and ||F(z*)||.
    """
    if not isinstance(prob, Problem):
        raise ProblemError(f"certify: prob must be a minmaxlab Problem, got {type(prob).__name__}")
    for name, value, low in (("pairs", pairs, 2), ("points", points, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ProblemError(f"certify: {name} must be an integer >= {low}, got {value!r}")
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
        # the heterogeneity at z*, evaluated through the kernels (the declared value is the
        # family's closed form)
        out["zeta2_measured"] = float(np.mean(np.sum(prob.F_i_all(prob.solution) ** 2, axis=1)))
        r = prob.minty_ratio(np.vstack([Z1, Z2]))
        out["r_sampled"] = float(np.min(r[np.isfinite(r)]))
    return out


__all__ = [
    "FAMILIES", "Noise", "Problem", "BilinearGame", "StronglyMonotoneQuadratic", "MintyBowl",
    "WeakMVIQuadratic", "Forsaken", "GlobalForsaken", "PolarGame", "DiracGAN", "CovarianceWGAN",
    "problem", "catalog", "format_catalog", "certify", "load_instance", "instance_files",
    "family_params", "check_claims", "RobustRegression", "DRORegression", "FairClassification",
    "user_problem", "is_user_problem",
]
