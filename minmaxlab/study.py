"""Studies: a TOML grid of runs -> results folder (one file per finished run) -> claim verdicts.

    minmaxlab study studies/rate_vs_iterations.toml [--quick] [--jobs N] [--out DIR]

A study file has a ``name``, a ``title``, an ``experiment`` (``trajectory``: one simulated run per
cell; ``mean_dynamics`` and ``limits`` for C1 and C7; ``gan``; ``data``: a run of a data-driven family
with held-out accuracy or loss of the network average), a ``[grid]`` (problems x workers x
topologies x algorithms x seeds, with list values expanded as a product), an optional ``[quick]``
table overriding grid keys for the quick version, and ``[[claims]]`` entries naming an analysis of
:mod:`minmaxlab.claims` with its predicted values and tolerances (stated once, here).

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
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from minmaxlab.config import _atomic_write
from minmaxlab.errors import ConfigError, read_toml
from minmaxlab.meta import provenance

TOP_KEYS = {"name", "title", "description", "experiment", "grid", "quick", "claims", "verify"}
GRID_KEYS = {"problems", "workers", "topologies", "algorithms", "seeds", "iterations", "record",
             "every_iteration", "record_iterates"}
EXPERIMENTS = ("trajectory", "mean_dynamics", "limits", "gan", "data")
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


def _type_error(path, key, want, got):
    return ConfigError(f"{path}: {key} must be {want}, got {got!r}")


def load_study(path: str | Path, quick: bool = False) -> Study:
    """Read and validate a study file; ``quick`` applies its [quick] overrides."""
    path = Path(path)
    raw = read_toml(path, "study file")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(TOP_KEYS)}")
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
    from minmaxlab.claims import ANALYSES

    for k, c in enumerate(claims):
        for key in ("claim", "analysis"):
            if key not in c:
                raise ConfigError(f"{path}: claims[{k}] is missing {key!r}")
        if c["analysis"] not in ANALYSES:
            raise ConfigError(f"{path}: claims[{k}]: unknown analysis {c['analysis']!r}; "
                              f"analyses: {sorted(ANALYSES)}")
        ANALYSES[c["analysis"]].validate(path, k, c)
    return Study(name=raw["name"], title=raw.get("title", raw["name"]), experiment=experiment,
                 grid=grid, claims=claims, path=str(path), quick=quick, raw=raw)


def _check_grid(path, where, grid, complete):
    unknown = sorted(set(grid) - GRID_KEYS)
    if unknown:
        raise ConfigError(f"{path}: [{where}] has unknown key(s) {unknown}; allowed: {sorted(GRID_KEYS)}")
    if complete:
        for key in ("problems", "topologies", "algorithms", "seeds", "iterations"):
            if key not in grid:
                raise ConfigError(f"{path}: [grid] is missing {key!r}")
    for key in ("problems", "topologies", "algorithms", "seeds"):
        if key in grid and not isinstance(grid[key], list):
            raise _type_error(path, f"[{where}] {key}", "an array", grid[key])
    if "workers" in grid:
        w = grid["workers"]
        ws = w if isinstance(w, list) else [w]
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in ws):
            raise _type_error(path, f"[{where}] workers", "integers >= 1", w)
    if "iterations" in grid:
        it = grid["iterations"]
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise _type_error(path, f"[{where}] iterations", "an integer >= 1", it)
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


def cells(study: Study) -> list[dict]:
    g = study.grid
    workers = g.get("workers", [None])
    workers = workers if isinstance(workers, list) else [workers]
    topologies = [t for x in g["topologies"] for t in _expand(_as_table(x, "topology"))]
    algorithms = [a for x in g["algorithms"] for a in _expand(_as_table(x, "algorithm"))]
    combos = []
    for x in g["problems"]:
        table = _as_table(x, "problem")
        own = table.pop("algorithms", None)  # a problem may bring its own algorithms (step sizes)
        algs = algorithms if own is None else [a for y in own for a in _expand(_as_table(y, "a"))]
        combos.extend((p, a) for p in _expand(table) for a in algs)
    out = []
    for (prob, alg), M, topo, seed in itertools.product(combos, workers, topologies, g["seeds"]):
        if alg.get("name") == "osg" and M not in (None, 1):
            continue
        cell = {
            "study": study.name,
            "experiment": study.experiment,
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


def _short(d: dict) -> str:
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
    ``minty_bowl|ring|M=8|dposg[eta=0.05,rounds=3]|seed=0``."""
    return "|".join([_short(cell["problem"]), _short(cell["topology"]), f"M={cell['workers']}",
                     _short(cell["algorithm"]), f"seed={cell['seed']}"])


def run_id(cell: dict) -> str:
    key = json.dumps({k: cell[k] for k in ("problem", "workers", "topology", "algorithm", "seed",
                                           "iterations", "record", "every_iteration",
                                           "record_iterates", "experiment")},
                     sort_keys=True, default=str)
    h = hashlib.blake2b(key.encode(), digest_size=5).hexdigest()
    slug = re.sub(r"[^A-Za-z0-9=.\-]+", "_", run_name(cell))[:90].strip("_")
    return f"{slug}__{h}"


def seed_for(cell: dict) -> int:
    """The run's random seed: a hash of the base seed, the problem and the worker count. Runs that
    differ only in algorithm or topology share their noise streams (common random numbers), so
    their differences are the methods' and not the noise's; different problems never share."""
    key = f"{cell['seed']}|{_short(cell['problem'])}|M={cell['workers']}"
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
    alg = build_algorithm(cell["algorithm"])
    return prob, topo, alg


def _identity_columns(cell, prob, topo, alg) -> dict:
    a = alg.params()
    eta = a.get("eta")
    rho = getattr(topo, "rho", None)
    return {
        "study": cell["study"],
        "run_id": cell["run_id"],
        "problem": prob.name,
        "family": prob.family,
        "dim": prob.dim,
        "workers": prob.workers,
        "topology": topo.name,
        "rho": float(rho) if rho is not None else np.nan,
        "algorithm": alg.label.split("[")[0],
        "label": alg.label,
        "eta": float(eta[0] if isinstance(eta, tuple) else eta),
        "rounds": int(a.get("rounds", 0)),
        "sigma": prob.noise.sigma,
        "batch": prob.noise.batch,
        "heterogeneity": prob.heterogeneity,
        "seed": cell["seed"],
    }


def execute(cell: dict) -> tuple[pd.DataFrame, dict]:
    """Run one cell; returns (tidy rows, metadata)."""
    from minmaxlab.claims import EXPERIMENT_FUNCTIONS

    prob, topo, alg = _build(cell)
    t0 = time.perf_counter()
    df, extra = EXPERIMENT_FUNCTIONS[cell["experiment"]](cell, prob, topo, alg, seed_for(cell))
    ident = _identity_columns(cell, prob, topo, alg)
    for k, v in reversed(list(ident.items())):
        df.insert(0, k, v)
    meta = {"cell": cell, "run_seed": seed_for(cell), "elapsed_s": time.perf_counter() - t0,
            **extra, **provenance()}
    return df, meta


def _run_and_save(cell: dict, runs_dir: str) -> tuple[str, str]:
    """Worker-process entry: run a cell and write its files atomically. Returns (run id, status)."""
    df, meta = execute(cell)
    path = Path(runs_dir) / f"{cell['run_id']}.csv"
    meta_path = Path(runs_dir) / f"{cell['run_id']}.json"
    arrays = meta.pop("arrays", None)
    if arrays:  # e.g. generated samples of a GAN run
        npz = Path(runs_dir) / f"{cell['run_id']}.npz"

        def save_npz(tmp):
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)

        _atomic_write(npz, save_npz)

    def dump(tmp):
        with open(tmp, "w") as fh:
            json.dump(meta, fh, indent=1, default=str)

    _atomic_write(meta_path, dump)  # metadata first: a run counts as finished once its table exists
    _atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    status = str(df["status"].iloc[-1]) if "status" in df and len(df) else "ok"
    return cell["run_id"], status


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


def _warm_up():
    """Compile or load the kernels once in the parent, so forked workers inherit them."""
    import minmaxlab as mml

    p = mml.problem("forsaken", workers=2)
    mml.run(p, mml.topology("ring", 2), mml.DPOSG(eta=0.01), iterations=2)


def results_folder(study: Study, out: str | Path | None) -> Path:
    base = Path(out or DEFAULT_RESULTS)
    return base / (study.name + ("_quick" if study.quick else ""))


def run_study(study: Study, out=None, jobs: int | None = None, progress: bool = True,
              analyse: bool = True) -> StudyResult:
    """Run every unfinished cell of ``study`` (in ``jobs`` processes), then analyse the claims."""
    start = time.perf_counter()
    folder = results_folder(study, out)
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for stale in runs_dir.glob(".*.tmp"):  # a write cut short by an interruption
        stale.unlink()
    spec = {"study": study.raw, "quick": study.quick, "file": study.path, **provenance()}
    _atomic_write(folder / "study.json",
                  lambda tmp: Path(tmp).write_text(json.dumps(spec, indent=1, default=str)))
    all_cells = cells(study)
    todo = [c for c in all_cells if not (runs_dir / f"{c['run_id']}.csv").exists()]
    skipped = len(all_cells) - len(todo)
    jobs = jobs or os.cpu_count() or 1
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=study.name, unit="run", leave=False)
    if todo:
        if jobs > 1 and len(todo) > 1:
            _warm_up()
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                     mp_context=mp.get_context("fork")) as pool:
                futures = [pool.submit(_run_and_save, c, str(runs_dir)) for c in todo]
                for f in as_completed(futures):
                    f.result()
                    if bar:
                        bar.update()
        else:
            for c in todo:
                _run_and_save(c, str(runs_dir))
                if bar:
                    bar.update()
    if bar:
        bar.close()
    table = load_table(folder, [c["run_id"] for c in all_cells])
    _atomic_write(folder / "table.csv", lambda tmp: table.to_csv(tmp, index=False))
    verdicts, points = ([], {})
    if analyse:
        verdicts, points = analyse_study(study, table, folder)
    return StudyResult(study, folder, table, verdicts, points, len(todo), skipped,
                       time.perf_counter() - start)


def load_table(folder: Path, ids: list[str] | None = None) -> pd.DataFrame:
    runs_dir = Path(folder) / "runs"
    files = [runs_dir / f"{i}.csv" for i in ids] if ids is not None else sorted(runs_dir.glob("*.csv"))
    frames = [pd.read_csv(f) for f in files if f.exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def analyse_study(study: Study, table: pd.DataFrame, folder: Path):
    from minmaxlab.claims import ANALYSES
    from minmaxlab.rates import verdict_table

    verdicts, points = [], {}
    for _k, c in enumerate(study.claims):
        an = ANALYSES[c["analysis"]]
        vs, pts = an.run(table, c, study)
        verdicts.extend(vs)
        key = f"{c['claim']}_{c['analysis']}" if len(study.claims) > 1 else c["claim"]
        points[key] = pts
        if pts is not None and len(pts):
            _atomic_write(folder / f"points_{key}.csv", lambda tmp, p=pts: p.to_csv(tmp, index=False))
    vt = verdict_table(verdicts)
    _atomic_write(folder / "claims.csv", lambda tmp: vt.to_csv(tmp, index=False))
    return verdicts, points
