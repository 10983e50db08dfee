"""Studies: a TOML grid of runs -> results folder (one file per finished run) -> claim verdicts.

    minmaxlab study studies/rate_vs_iterations.toml [--quick] [--jobs N] [--out DIR]
    mpiexec -n K python -m mpi4py.futures -m minmaxlab study FILE --executor mpi   # K - 1 workers

A study file has a ``name``, a ``title``, an ``experiment`` (what a cell runs, see
:mod:`minmaxlab.experiments`), a ``[grid]`` (problems x workers x topologies x algorithms x seeds,
with list values expanded as a product), an optional ``[quick]`` table overriding grid keys for
the quick version, ``[[claims]]`` entries naming an analysis of :mod:`minmaxlab.claims` with its
predicted values and tolerances (stated once, here), and:

* ``[[controls]]``: negative controls, settings in which the claims are false. Each has a
  ``name``, a ``description``, ``grid`` overrides (e.g. another algorithm or topology),
  ``problem_overrides`` merged into every problem table, ``quick`` overrides, the ``checks`` it
  controls (claim ids; default all) and ``claim_params`` (claim keys it changes). Its runs get
  the role ``control:<name>`` and the same analyses, which must FAIL on them.
* ``[user]``: how the study runs on a user's game (``minmaxlab verify --problem SPEC``):
  ``problems`` (tables where ``"{problem}"`` stands for SPEC), ``requires`` (what the claim needs
  the problem to declare: ``solution``, ``mvi``, ``mvi_fails``, ``heterogeneous``) and grid
  overrides. Without it, or when the problem lacks a requirement, the study's claims are "not
  applicable" and say why. Algorithms may give ``eta_L`` (eta = eta_L / L) instead of eta.

A run's identity (its id, label and seed) derives from one canonical form of its spec (sorted keys,
integral floats as integers), so the order of keys in the TOML file changes nothing.

Every finished run is written at once, atomically, to ``DIR/<study>/runs/<run id>.csv`` with its
metadata beside it (spec, seed, versions, git revision); running the same command again skips the
finished runs, so an interrupted study resumes where it stopped and never leaves partial files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from minmaxlab.config import atomic_write, writable_folder
from minmaxlab.errors import ConfigError, read_toml, reject_unknown
from minmaxlab.executors import check_executor, pool, run_on
from minmaxlab.meta import provenance
from minmaxlab.results import (
    ResultWarning,
    check_runs,
    failures,
    foreign_writers,
    load_tables,
    remove_stale_temporaries,
    save_failure,
    save_run,
)
from minmaxlab.workers import check_jobs, run_all

TOP_KEYS = {"name", "title", "description", "experiment", "grid", "quick", "claims", "verify",
            "controls", "user"}
CONTROL_KEYS = {"name", "description", "grid", "problem_overrides", "quick", "checks",
                "claim_params"}
USER_KEYS = {"problems", "requires", *({"workers", "topologies", "algorithms", "seeds",
                                        "iterations", "record", "every_iteration",
                                        "record_iterates"})}
REQUIREMENTS = ("solution", "mvi", "mvi_fails", "heterogeneous")
GRID_KEYS = {"problems", "workers", "topologies", "algorithms", "seeds", "iterations", "record",
             "every_iteration", "record_iterates"}
EXPERIMENTS = ("trajectory", "mean_dynamics", "limits", "gan", "data")
CLAIM_ROLE = "claim"
NO_EXPAND = {"matrix", "window", "box", "z0"}
DEFAULT_RESULTS = "results"


# ---------------------------------------------------------------------------- loading
@dataclass
class Study:
    name: str
    title: str
    experiment: str
    grid: dict
    claims: list[dict]
    path: str
    quick: bool = False
    raw: dict = field(default_factory=dict)
    controls: list[dict] = field(default_factory=list)
    user: dict | None = None  # the [user] section
    user_problem: str | None = None  # SPEC of `verify --problem SPEC`, if any
    not_applicable: str = ""  # why the study cannot run on the user's problem
    dropped_controls: list[dict] = field(default_factory=list)  # not run on the user's problem


def _type_error(path, key, want, got):
    return ConfigError(f"{path}: {key} must be {want}, got {got!r}")


def load_study(path: str | Path, quick: bool = False, problem: str | None = None) -> Study:
    """Read and validate a study file; ``quick`` applies its [quick] overrides; ``problem`` (a
    user's ``FILE.py:FUNCTION``) runs it on that game through its [user] section."""
    path = Path(path)
    raw = read_toml(path, "study file")
    reject_unknown(str(path), raw, TOP_KEYS)
    for key in ("name", "grid"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key {key!r}")
    if not isinstance(raw["name"], str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", raw["name"]):
        raise _type_error(path, "name", "a word (letters, digits, _ and -)", raw["name"])
    experiment = raw.get("experiment", "trajectory")
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"{path}: experiment must be one of {EXPERIMENTS}, got {experiment!r}")
    grid = raw["grid"]
    if not isinstance(grid, dict):
        raise _type_error(path, "grid", "a table", grid)
    _check_grid(path, "grid", grid, complete=True)
    if "quick" in raw:
        if not isinstance(raw["quick"], dict):
            raise _type_error(path, "quick", "a table", raw["quick"])
        _check_grid(path, "quick", raw["quick"], complete=False)
        if quick:
            grid = {**grid, **raw["quick"]}
    claims = raw.get("claims", [])
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        raise _type_error(path, "claims", "an array of tables ([[claims]])", claims)
    from minmaxlab.claims import CLAIMS

    for k, c in enumerate(claims):
        for key in ("claim", "analysis"):
            if key not in c:
                raise ConfigError(f"{path}: claims[{k}] is missing {key!r}")
        if not isinstance(c["analysis"], str):
            raise _type_error(path, f"claims[{k}].analysis", "a string", c["analysis"])
        reject_unknown(f"{path}: claims[{k}]", [c["analysis"]], CLAIMS, what="analysis")
        CLAIMS[c["analysis"]].validate(path, k, c, experiment)
    controls = _check_controls(path, raw.get("controls", []), {c["claim"] for c in claims})
    user = raw.get("user")
    if user is not None:
        _check_user(path, user)
    study = Study(name=raw["name"], title=raw.get("title", raw["name"]), experiment=experiment,
                  grid=grid, claims=claims, path=str(path), quick=quick, raw=raw,
                  controls=controls, user=user)
    if problem is not None:
        _apply_user(study, problem)
    return study


def _check_controls(path, controls, claim_ids) -> list[dict]:
    if not isinstance(controls, list) or not all(isinstance(c, dict) for c in controls):
        raise _type_error(path, "controls", "an array of tables ([[controls]])", controls)
    seen = set()
    for k, c in enumerate(controls):
        where = f"controls[{k}]"
        reject_unknown(f"{path}: {where}", c, CONTROL_KEYS)
        for key in ("name", "description"):
            if not isinstance(c.get(key), str):
                raise _type_error(path, f"{where}.{key}", "a string", c.get(key))
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", c["name"]) or c["name"] in seen | {CLAIM_ROLE}:
            raise _type_error(path, f"{where}.name", "a new word (letters, digits, _ and -)",
                              c["name"])
        seen.add(c["name"])
        for key in ("grid", "quick", "problem_overrides", "claim_params"):
            if not isinstance(c.get(key, {}), dict):
                raise _type_error(path, f"{where}.{key}", "a table", c[key])
        _check_grid(path, f"{where}.grid", c.get("grid", {}), complete=False)
        _check_grid(path, f"{where}.quick", c.get("quick", {}), complete=False)
        checks = c.get("checks", sorted(claim_ids))
        if not isinstance(checks, list) or not set(checks) <= claim_ids:
            raise _type_error(path, f"{where}.checks", f"claim ids of this study {sorted(claim_ids)}",
                              checks)
    return controls


def _check_user(path, user):
    if not isinstance(user, dict):
        raise _type_error(path, "user", "a table", user)
    reject_unknown(f"{path}: [user]", user, USER_KEYS)
    if "problems" not in user:
        raise ConfigError(f"{path}: [user] needs problems (tables with name = \"{{problem}}\")")
    req = user.get("requires", [])
    if not isinstance(req, list) or not set(req) <= set(REQUIREMENTS):
        raise _type_error(path, "[user] requires", f"a list of {list(REQUIREMENTS)}", req)
    _check_grid(path, "user", {k: v for k, v in user.items() if k != "requires"}, complete=False)


def _substitute(obj, spec):
    if isinstance(obj, str):
        return obj.replace("{problem}", spec)
    if isinstance(obj, dict):
        return {k: _substitute(v, spec) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, spec) for v in obj]
    return obj


def _apply_user(study: Study, spec: str):
    study.user_problem = spec
    if study.user is None:
        study.not_applicable = "the study runs built-in instances only (no [user] section)"
        return
    over = {k: v for k, v in study.user.items() if k != "requires"}
    study.grid = {**study.grid, **_substitute(over, spec)}
    # controls that replace the problems are tied to built-in instances: recorded as not run
    study.dropped_controls = [c for c in study.controls if "problems" in c.get("grid", {})]
    study.controls = [c for c in study.controls if "problems" not in c.get("grid", {})]


def missing_requirements(prob, requires) -> list[str]:
    """Why ``prob`` cannot carry a claim that needs ``requires``; empty if it can."""
    why = []
    if "solution" in requires and prob.solution is None:
        why.append("it declares no solution z*")
    if "mvi" in requires and prob.mvi not in ("holds", "equality"):
        why.append(f"it does not declare that the Minty condition holds (mvi = {prob.mvi!r})")
    if "mvi_fails" in requires and prob.mvi not in ("fails",):
        why.append(f"it does not declare that the Minty condition fails (mvi = {prob.mvi!r})")
    if "heterogeneous" in requires and not (prob.zeta2 or 0) > 0:
        why.append("its workers do not differ at the solution (zeta^2 = 0 or unknown)")
    return why


def _check_grid(path, where, grid, complete):
    reject_unknown(f"{path}: [{where}]", grid, GRID_KEYS)
    if complete:
        for key in ("problems", "topologies", "algorithms", "seeds", "iterations"):
            if key not in grid:
                raise ConfigError(f"{path}: [grid] is missing {key!r}")
    for key in ("problems", "topologies", "algorithms", "seeds"):
        if key in grid and not isinstance(grid[key], list):
            raise _type_error(path, f"[{where}] {key}", "an array", grid[key])
    for key in ("problems", "topologies"):  # arrays by now (checked just above)
        for x in grid.get(key, []):
            if not isinstance(x, (str, dict)):
                raise _type_error(path, f"[{where}] {key} entry", "a name or a table", x)
    if "workers" in grid:
        w = grid["workers"]
        ws = w if isinstance(w, list) else [w]
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in ws):
            raise _type_error(path, f"[{where}] workers", "integers >= 1", w)
    if "iterations" in grid:
        it = grid["iterations"]
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise _type_error(path, f"[{where}] iterations", "an integer >= 1", it)
    for key in ("every_iteration", "record_iterates"):
        if key in grid and not isinstance(grid[key], bool):
            raise _type_error(path, f"[{where}] {key}", "true or false", grid[key])
    if "seeds" in grid and not all(isinstance(s, int) and not isinstance(s, bool) for s in grid["seeds"]):
        raise _type_error(path, f"[{where}] seeds", "an array of integers", grid["seeds"])
    for key in ("algorithms",):
        for a in grid.get(key, []):
            if not isinstance(a, dict) or "name" not in a:
                raise _type_error(path, f"[{where}] algorithms entry", "a table with a name", a)


# ---------------------------------------------------------------------------- grid expansion
def _expand(d: dict) -> list[dict]:
    """Product over list-valued entries (one level into params/noise/constraints tables)."""
    keys, options = [], []
    for k, v in d.items():
        if isinstance(v, dict) and k in ("params", "noise"):
            subs = _expand(v)
            keys.append(k)
            options.append(subs)
        elif isinstance(v, list) and k not in NO_EXPAND:
            keys.append(k)
            options.append(v)
        else:
            keys.append(k)
            options.append([v])
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*options)]


def _as_table(x, kind):
    return {"name": x} if isinstance(x, str) else dict(x)


def problem_section(x) -> dict:
    """The first expansion of a grid's problem entry, as build_problem takes it (without the
    algorithms a problem may bring)."""
    table = _as_table(x, "problem")
    table.pop("algorithms", None)
    return _expand(table)[0]


def _merge_problem(x, overrides):
    table = _as_table(x, "problem")
    for k, v in overrides.items():
        table[k] = {**table.get(k, {}), **v} if isinstance(v, dict) else v
    return table


def _grid_cells(study: Study, g: dict, role: str, overrides: dict) -> list[dict]:
    workers = g.get("workers", [None])
    workers = workers if isinstance(workers, list) else [workers]
    topologies = [t for x in g["topologies"] for t in _expand(_as_table(x, "topology"))]
    algorithms = [a for x in g["algorithms"] for a in _expand(_as_table(x, "algorithm"))]
    combos = []
    for x in g["problems"]:
        table = _merge_problem(x, overrides)
        own = table.pop("algorithms", None)  # a problem may bring its own algorithms (step sizes)
        if own is not None and "algorithms" in overrides:
            own = overrides["algorithms"]
        algs = algorithms if own is None else [a for y in own for a in _expand(_as_table(y, "a"))]
        combos.extend((p, a) for p in _expand(table) for a in algs)
    out = []
    for (prob, alg), M, topo, seed in itertools.product(combos, workers, topologies, g["seeds"]):
        if alg.get("name") == "osg" and M not in (None, 1):
            continue
        cell = {
            "study": study.name,
            "experiment": study.experiment,
            "source": _source_digest(prob.get("name"), alg.get("name")),
            "role": role,
            "problem": prob,
            "workers": M,
            "topology": topo,
            "algorithm": alg,
            "seed": int(seed),
            "iterations": int(g["iterations"]),
            "record": g.get("record"),
            "every_iteration": bool(g.get("every_iteration", True)),
            "record_iterates": bool(g.get("record_iterates", False)),
        }
        cell["run_id"] = run_id(cell)
        out.append(cell)
    return out


def control_grid(study: Study, ctrl: dict) -> dict:
    """The grid of a control: the study's grid with the control's overrides (and, for a quick
    study, its quick overrides)."""
    g = {**study.grid, **ctrl.get("grid", {})}
    if study.quick:
        g.update(ctrl.get("quick", {}))
    return g


def cells(study: Study) -> list[dict]:
    """Every run of the study: the claims' cells, then each control's."""
    out = _grid_cells(study, study.grid, CLAIM_ROLE, {})
    for ctrl in study.controls:
        over = dict(ctrl.get("problem_overrides", {}))
        g = control_grid(study, ctrl)
        if "algorithms" in ctrl.get("grid", {}) or (study.quick and "algorithms" in ctrl.get("quick", {})):
            over["algorithms"] = g["algorithms"]  # beats a problem's own algorithms
        out += _grid_cells(study, g, f"control:{ctrl['name']}", over)
    return out


def canonical(obj):
    """One form for equal specs: dict keys sorted, integral floats as integers, tuples as lists."""
    if isinstance(obj, dict):
        return {str(k): canonical(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    return str(obj)


def _key(obj) -> str:
    return json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"))


def _short(d: dict) -> str:
    d = canonical(d)
    name = d.get("name", "?")
    rest = [f"{k}={_fmt(v)}" for k, v in d.items() if k != "name"]
    return f"{name}[{','.join(rest)}]" if rest else str(name)


def _fmt(v):
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def run_name(cell: dict) -> str:
    """Human name of a run from its parameters, e.g.
    ``minty_bowl|ring|M=8|dposg[eta=0.05,rounds=3]|seed=0`` (controls start with their role)."""
    parts = [_short(cell["problem"]), _short(cell["topology"]), f"M={cell['workers']}",
             _short(cell["algorithm"]), f"seed={cell['seed']}"]
    role = cell.get("role", CLAIM_ROLE)
    return "|".join(parts if role == CLAIM_ROLE else [role, *parts])


IDENTITY = ("role", "problem", "workers", "topology", "algorithm", "seed", "iterations", "record",
            "every_iteration", "record_iterates", "experiment", "source")


def _source_digest(problem, algorithm=None) -> str | None:
    """For a user's game or method, a hash of the files that define them: editing either never
    reuses the results of the old code. None for the library's problems and methods."""
    from minmaxlab import userspec
    from minmaxlab.problems import is_user_problem, user_source

    paths = [user_source(problem) if is_user_problem(problem) else None,
             userspec.source(algorithm) if userspec.is_user_spec(algorithm) else None]
    if not any(paths):
        return None
    data = b"".join(p.read_bytes() for p in paths if p)
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def run_id(cell: dict) -> str:
    """A readable slug and a hash of the canonical spec: equal specs, equal ids."""
    defaults = {"role": CLAIM_ROLE}
    key = _key({k: cell.get(k, defaults.get(k)) for k in IDENTITY if cell.get(k) is not None
                or k in defaults})
    h = hashlib.blake2b(key.encode(), digest_size=5).hexdigest()
    slug = re.sub(r"[^A-Za-z0-9=.\-]+", "_", run_name(cell))[:90].strip("_")
    return f"{slug}__{h}"


def seed_for(cell: dict) -> int:
    """The run's random seed: a hash of the base seed, the canonical problem and the worker count.
    Runs that differ only in algorithm, topology or role (claim or control) share their noise
    streams (common random numbers), so their differences are the methods' and not the noise's;
    different problems never share."""
    key = f"{cell['seed']}|{_key(cell['problem'])}|M={cell['workers']}"
    h = hashlib.blake2b(key.encode(), digest_size=4)
    return int.from_bytes(h.digest(), "little")


# ---------------------------------------------------------------------------- one cell
def _build(cell):
    from minmaxlab.config import build_algorithm, build_problem, build_topology

    psec = dict(cell["problem"])
    if cell["workers"] is not None:
        psec["workers"] = cell["workers"]
    prob = build_problem(psec)
    topo = build_topology(cell["topology"], prob.workers)
    asec = dict(cell["algorithm"])
    if "eta_L" in asec:  # a step size stated relative to the problem's certified L
        if "eta" in asec:
            raise ConfigError(f"study {cell['study']}: algorithm {asec} gives both eta and eta_L")
        asec["eta"] = float(asec.pop("eta_L")) / prob.L
    return prob, topo, build_algorithm(asec)


def _scalar(v):
    if v is None or isinstance(v, (bool, int, float, str, np.integer, np.floating)):
        return v
    return json.dumps(canonical(v), sort_keys=True)


def _identity_columns(cell, prob, topo, alg) -> dict:
    """Every parameter of the run as a column, so that no analysis parses a label."""
    a = alg.params()
    eta = a.get("eta")
    rho = getattr(topo, "rho", None)
    cols = {
        "study": cell["study"],
        "run_id": cell["run_id"],
        "role": cell.get("role", CLAIM_ROLE),
        "problem": prob.name,
        "problem_spec": _key({k: v for k, v in cell["problem"].items() if k != "noise"}),
        "family": prob.family,
        "dim": prob.dim,
        "workers": prob.workers,
        "L": prob.L,
        "mvi": prob.mvi,
        "zeta2": prob.zeta2 if prob.zeta2 is not None else np.nan,
        "topology": topo.name,
        "topology_spec": _key(cell["topology"]),
        "rho": float(rho) if rho is not None else np.nan,
        "a4": bool(getattr(topo, "a4", True)),
        "algorithm": alg.label.split("[")[0],
        "label": alg.label,
        "eta": float(eta[0] if isinstance(eta, tuple) else eta),
        "rounds": int(a.get("rounds", 0)),
        "schedule": a.get("schedule", "constant"),
        "schedule_eps": float(a["eps"]) if a.get("eps") is not None else np.nan,
        "variant": a.get("variant", ""),
        "gossip": a.get("gossip", "plain"),
        "local_steps": int(a.get("local_steps", 0)),
        "beta": float(a.get("beta", np.nan)),
        "sigma": prob.noise.sigma,
        "batch": prob.noise.batch,
        "heterogeneity": prob.heterogeneity,
        "seed": cell["seed"],
    }
    for k, v in sorted((prob.params or {}).items()):
        cols[f"p_{k}"] = _scalar(v)
    for k, v in sorted(cell["topology"].items()):
        if k != "name":
            cols[f"topology_{k}"] = _scalar(v)
    return cols


def execute(cell: dict) -> tuple[pd.DataFrame, dict]:
    """Run one cell; returns (tidy rows, metadata)."""
    from minmaxlab.experiments import EXPERIMENT_FUNCTIONS

    prob, topo, alg = _build(cell)
    t0 = time.perf_counter()
    df, extra = EXPERIMENT_FUNCTIONS[cell["experiment"]](cell, prob, topo, alg, seed_for(cell))
    ident = _identity_columns(cell, prob, topo, alg)
    df = pd.concat([pd.DataFrame({k: [v] * len(df) for k, v in ident.items()}, index=df.index),
                    df.drop(columns=[c for c in ident if c in df.columns])], axis=1)
    meta = {"cell": cell, "run_seed": seed_for(cell), "elapsed_s": time.perf_counter() - t0,
            **extra, **provenance()}
    return df, meta


def _run_and_save_item(item: tuple[dict, str]) -> tuple[str, str, float]:
    """Worker-process entry: ``_run_and_save(cell, runs_dir)`` for a (cell, runs_dir) pair."""
    return _run_and_save(*item)


def _run_and_save(cell: dict, runs_dir: str) -> tuple[str, str, float]:
    """Run a cell and write its files atomically. Returns (run id, status, seconds); a run that
    raises is recorded as failed (bad input still stops the study)."""
    from minmaxlab.errors import MinmaxlabError

    start = time.perf_counter()
    try:
        df, meta = execute(cell)
    except MinmaxlabError:
        raise
    except Exception as exc:  # a numerical or user-code failure of this run only
        save_failure(Path(runs_dir), cell["run_id"], f"{type(exc).__name__}: {exc}",
                     {"cell": cell, **provenance()})
        return cell["run_id"], "failed", time.perf_counter() - start
    arrays = meta.pop("arrays", None)
    if arrays:  # e.g. generated samples of a GAN run
        npz = Path(runs_dir) / f"{cell['run_id']}.npz"

        def save_npz(tmp):
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)

        atomic_write(npz, save_npz)
    save_run(Path(runs_dir), cell["run_id"], df, meta)
    status = str(df["status"].iloc[-1]) if "status" in df and len(df) else "ok"
    return cell["run_id"], status, time.perf_counter() - start


# ---------------------------------------------------------------------------- the runner
@dataclass
class StudyResult:
    study: Study
    folder: Path
    table: pd.DataFrame
    verdicts: list
    points: dict
    computed: int
    skipped: int
    elapsed: float
    control_verdicts: list = field(default_factory=list)  # each control's own check rows
    failed_runs: dict = field(default_factory=dict)  # run id -> error, runs that raised

    @property
    def failed(self) -> bool:
        """True when a check of the study failed (inconclusive is not a failure)."""
        return any(v.verdict == "fail" for v in self.verdicts)


def _warm_up(studies: list[Study]):
    """Compile or load the kernels once in the parent, so forked workers inherit them (a user's
    operator gets its own kernels: compile them here too, not once per worker)."""
    import minmaxlab as mml
    from minmaxlab.config import build_problem

    p = mml.problem("forsaken", workers=2)
    mml.run(p, mml.topology("ring", 2), mml.DPOSG(eta=0.01), iterations=2)
    tables = {_key(problem_section(x)): problem_section(x)
              for study in studies if study.user_problem for x in study.grid["problems"]}
    for key in sorted(tables):
        q = build_problem({**tables[key], "workers": 2})
        mml.run(q, mml.topology("ring", 2), mml.DPOSG(eta=0.01 / q.L), iterations=2)


def expected_cost(cell: dict) -> float:
    """A rough size of a run, to start the longest first when runs share workers (it orders the
    work and changes no result): iterations x workers, times 1000 for a GAN, whose operator is
    two neural networks on a mini-batch."""
    scale = 1000.0 if cell["experiment"] == "gan" else 1.0
    return scale * cell["iterations"] * (cell["workers"] or 1)


def results_folder(study: Study, out: str | Path | None) -> Path:
    base = Path(out or DEFAULT_RESULTS)
    name = study.name + ("_quick" if study.quick else "")
    if study.user_problem:
        name += "_user_" + re.sub(r"[^A-Za-z0-9]+", "-", study.user_problem).strip("-")[-40:]
    return base / name


def _not_applicable(study: Study, why: str) -> list:
    from minmaxlab.rates import Verdict

    return [Verdict(c["claim"], f"{study.name}: {study.user_problem}", "-", np.nan, np.nan, np.nan,
                    "not applicable", why) for c in study.claims]


def user_requirements(study: Study) -> str:
    """Why the study cannot run on the user's problem ("" if it can)."""
    if study.not_applicable or not study.user_problem:
        return study.not_applicable
    from minmaxlab.config import build_problem

    workers = study.grid.get("workers", [None])
    workers = workers if isinstance(workers, list) else [workers]
    why = []
    for x in study.grid["problems"]:
        table = problem_section(x)  # requirements do not depend on the noise
        prob = build_problem({**table, "workers": max(w or 1 for w in workers)})
        why += missing_requirements(prob, study.user.get("requires", []))
    return "; ".join(dict.fromkeys(why))


@dataclass
class _Pending:
    """A study whose folder is ready: the ids of all its runs, and those still to compute."""
    study: Study
    folder: Path
    ids: list[str]
    todo: list[dict]

    @property
    def skipped(self) -> int:
        return len(self.ids) - len(self.todo)


def _prepare(study: Study, out) -> _Pending | StudyResult:
    """Make the study's results folder and find its unfinished runs (a StudyResult at once when
    the study cannot run on the user's problem)."""
    start = time.perf_counter()
    folder = writable_folder(results_folder(study, out), "results folder")
    why = user_requirements(study)
    if why:
        return StudyResult(study, folder, pd.DataFrame(), _not_applicable(study, why), {}, 0, 0,
                           time.perf_counter() - start)
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(runs_dir)  # writes cut short by an interruption
    spec = {"study": study.raw, "quick": study.quick, "file": study.path,
            "user_problem": study.user_problem, **provenance()}
    atomic_write(folder / "study.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(spec, indent=1, default=str)))
    all_cells = cells(study)
    ids = [c["run_id"] for c in all_cells]
    redo = set(check_runs(runs_dir, ids))
    todo = [c for c in all_cells if c["run_id"] in redo]
    others = foreign_writers(runs_dir, [i for i in ids if i not in redo], provenance())
    if others:
        warnings.warn(f"{folder}: reusing {len(ids) - len(todo)} finished run(s), some written "
                      f"by {'; '.join(others)}", ResultWarning, stacklevel=3)
    return _Pending(study, folder, ids, todo)


def _compute(pending: list[_Pending], jobs: int, progress: bool, on_done, executor: str = "local",
             ex=None) -> None:
    """Every unfinished run of the pending studies (each with runs to do), longest first, in
    ``jobs`` local processes or on ``ex``, the pool of ``executor`` (see
    :mod:`minmaxlab.executors`); ``on_done((run id, status, seconds))`` here as each ends."""
    # absolute: a worker of another executor may run in another folder
    work = [(c, str((p.folder / "runs").resolve())) for p in pending for c in p.todo]
    work.sort(key=lambda w: -expected_cost(w[0]))  # stable: equal costs keep the file's order
    bar = None
    if progress and work:
        from tqdm import tqdm

        desc = pending[0].study.name if len(pending) == 1 else "runs"
        bar = tqdm(total=len(work), desc=desc, unit="run", leave=False)

    def done(result):
        on_done(result)
        if bar:
            bar.update()

    try:
        if ex is not None:
            if executor == "mpi":  # the ranks load the kernels this one compiles and caches
                _warm_up([p.study for p in pending])
            run_on(ex, _run_and_save_item, work, done)
        elif jobs > 1 and len(work) > 1:
            _warm_up([p.study for p in pending])
            run_all(_run_and_save_item, work, min(jobs, len(work)), done)
        else:
            for item in work:
                done(_run_and_save_item(item))
    except KeyboardInterrupt:  # finished runs are on disk; in-flight ones leave no trace
        for p in pending:
            remove_stale_temporaries(p.folder / "runs")
        raise
    finally:
        if bar:
            bar.close()


def _conclude(p: _Pending, analyse: bool, seconds: float) -> StudyResult:
    start = time.perf_counter()
    table = load_table(p.folder, p.ids)
    atomic_write(p.folder / "table.csv", lambda tmp: table.to_csv(tmp, index=False))
    res = StudyResult(p.study, p.folder, table, [], {}, len(p.todo), p.skipped, 0.0)
    res.failed_runs = failures(p.folder / "runs", p.ids)
    if analyse:
        res.verdicts, res.points, res.control_verdicts = analyse_study(p.study, table, p.folder,
                                                                       res.failed_runs)
    res.elapsed = seconds + time.perf_counter() - start
    return res


def run_studies(studies: list[Study], out=None, jobs: int | None = None, progress: bool = True,
                analyse: bool = True, on_result=None, executor: str = "local",
                scheduler: str | None = None) -> list[StudyResult]:
    """Run the unfinished cells of all ``studies`` in one pool of ``jobs`` processes, longest
    first, so that a long run of one study overlaps the short runs of the others. Each study is
    analysed as soon as its last run is in, and handed to ``on_result(result)`` then (while the
    pool goes on with the others). Returns the results in the order of ``studies``; a result's
    ``elapsed`` is the seconds its own runs took plus its analysis.

    ``executor`` "mpi" runs them on the other ranks of an MPI job started with
    ``python -m mpi4py.futures``, "dask" on the workers of the dask scheduler at ``scheduler``;
    both ignore ``jobs`` (the job or the cluster decides how many workers there are)."""
    check_jobs(jobs)
    check_executor(executor, scheduler)  # before any folder is made
    jobs = jobs if jobs is not None else os.cpu_count() or 1
    with pool(executor, scheduler) as ex:  # a dask scheduler is reached now, before any folder
        prepared = [_prepare(s, out) for s in studies]
        results: dict[int, StudyResult] = {}
        left, seconds, owner = {}, {}, {}
        for k, p in enumerate(prepared):
            if isinstance(p, _Pending) and p.todo:
                left[k], seconds[k] = len(p.todo), 0.0
                owner.update({c["run_id"]: k for c in p.todo})

        def finish(k):
            p = prepared[k]
            results[k] = _conclude(p, analyse, seconds.get(k, 0.0)) if isinstance(p, _Pending) else p
            if on_result is not None:
                from tqdm import tqdm

                with tqdm.external_write_mode():  # lift a progress bar while it prints
                    on_result(results[k])

        for k in range(len(prepared)):
            if k not in left:  # nothing to compute: not applicable, or every run reused
                finish(k)

        def on_done(result):
            run, _status, took = result
            k = owner[run]
            seconds[k] += took
            left[k] -= 1
            if left[k] == 0:
                finish(k)

        _compute([p for k, p in enumerate(prepared) if k in left], jobs, progress, on_done,
                 executor, ex)
        return [results[k] for k in range(len(prepared))]


def run_study(study: Study, out=None, jobs: int | None = None, progress: bool = True,
              analyse: bool = True, executor: str = "local",
              scheduler: str | None = None) -> StudyResult:
    """Run every unfinished cell of ``study`` (in ``jobs`` processes, or on ``executor``: see
    :func:`run_studies`), then analyse the claims; ``elapsed`` is the wall-clock time of the
    whole."""
    start = time.perf_counter()
    res = run_studies([study], out, jobs, progress, analyse, executor=executor,
                      scheduler=scheduler)[0]
    res.elapsed = time.perf_counter() - start
    return res


def load_table(folder: Path, ids: list[str] | None = None) -> pd.DataFrame:
    """The finished runs of a results folder (those of ``ids``, or all), stacked."""
    runs_dir = Path(folder) / "runs"
    if ids is None:
        ids = sorted(f.stem for f in runs_dir.glob("*.csv"))
    return load_tables(runs_dir, ids)


def _left_out(spec, study, failed: dict):
    from minmaxlab.rates import Verdict

    listing = "; ".join(f"{rid}: {err}" for rid, err in sorted(failed.items())[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    return Verdict(spec["claim"], f"{study.name}: runs left out", "every run of the grid finished",
                   float(len(failed)), np.nan, np.nan, "inconclusive",
                   f"the analysis left out {len(failed)} run(s) that raised: {listing}{more}")


def tables_by_role(table: pd.DataFrame) -> dict:
    """The rows of the claims' runs under "claim" and each control's under its name."""
    if not len(table):
        return {}
    out = {}
    for role, g in table.groupby("role"):
        out[role.split(":", 1)[1] if role.startswith("control:") else role] = g
    return out


def analyse_study(study: Study, table: pd.DataFrame, folder: Path, failed: dict | None = None):
    """Verdicts (controls attached) and points of every claim; writes claims.csv (the claims'
    checks with columns control and control_verdict), controls.csv (the controls' own checks)
    and one points file per claim."""
    from minmaxlab.claims import evaluate
    from minmaxlab.rates import verdict_table

    tables = tables_by_role(table)
    verdicts, points, own = [], {}, []
    for c in study.claims:
        vs, pts, cv = evaluate(c, tables, study)
        verdicts.extend(vs)
        if failed:
            verdicts.append(_left_out(c, study, failed))
        own.extend(cv)
        key = f"{c['claim']}_{c['analysis']}" if len(study.claims) > 1 else c["claim"]
        points[key] = pts
        if pts is not None and len(pts):
            atomic_write(folder / f"points_{key}.csv", lambda tmp, p=pts: p.to_csv(tmp, index=False))
    vt = verdict_table(verdicts)
    atomic_write(folder / "claims.csv", lambda tmp: vt.to_csv(tmp, index=False))
    ct = verdict_table(own)
    atomic_write(folder / "controls.csv", lambda tmp: ct.to_csv(tmp, index=False))
    return verdicts, points, own
