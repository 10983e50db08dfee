"""One run described by a TOML file (``minmaxlab run FILE.toml``).

    [problem]                 # a named instance or a family, with overrides
    name = "minty_bowl"
    workers = 16
    params = { dim = 2, seed = 0 }
    noise = { sigma = 0.1, batch = 4 }          # optional: kind = "gaussian" | "finite_sum"
    constraints = { u = { ball = 1.0 } }        # optional: ball / box = [lo, hi] / simplex / l1
    z0 = [0.8, 0.0]                             # optional start, dim numbers (default: in the box)

    [topology]
    name = "ring"             # or matrix = [[...], ...], or edgelist = "file.txt"
    rule = "metropolis"       # optional, with params = { ... }

    [algorithm]
    name = "dposg"            # dposg, dposg_single, cposg, osg, dsgda, deg, dpoadam, cpoadam
    eta = 0.05
    rounds = 3

    [run]
    iterations = 10000
    seed = 1
    record = 60               # or "all"
    every_iteration = true    # optional; default: true for the simulator, false for the mpi backend

    [output]
    path = "results/minty_ring.csv"   # .csv or .parquet; metadata goes beside it as .json
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from minmaxlab.errors import ConfigError, read_toml, reject_unknown

SECTIONS = {"problem", "topology", "algorithm", "run", "output"}
RUN_KEYS = {"iterations", "seed", "record", "every_iteration"}
OUTPUT_KEYS = {"path"}
PROBLEM_KEYS = {"name", "workers", "params", "noise", "constraints", "z0"}
PLAYERS = {"u", "v"}
NOISE_KEYS = {"sigma", "batch", "kind", "samples", "seed"}  # Problem.with_noise


def _integer(where: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def check_run_section(where: str, run: dict) -> None:
    """[run]: known keys and strict types (a seed of 1.7 or every_iteration = "false" is refused,
    never bent)."""
    reject_unknown(where, run, RUN_KEYS)
    _integer(f"{where} iterations", run.get("iterations"), 0)
    if "seed" in run:
        _integer(f"{where} seed", run["seed"], 0)
    if "every_iteration" in run and not isinstance(run["every_iteration"], bool):
        raise ConfigError(f"{where} every_iteration must be true or false, got "
                          f"{run['every_iteration']!r}")


def check_output_path(path) -> Path:
    """Before any work: the suffix, a writer for it, and a folder we can write into."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise ConfigError(f"output path must end in .csv or .parquet, got {path}")
    if path.suffix == ".parquet":
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
            raise ConfigError(f"output {path}: writing .parquet needs pyarrow or fastparquet "
                              "(pip install pyarrow), or use .csv")
    if path.is_dir():
        raise ConfigError(f"output path {path} is a folder; give a file name ending in .csv")
    writable_folder(path.parent, "output folder")
    return path


def writable_folder(folder, what: str) -> Path:
    """Before any work: ``folder`` exists (it is made if needed) and a file can be written in it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe.", delete=True)
        probe.close()
    except OSError as exc:
        raise ConfigError(f"{what} {folder} is not writable: {exc.strerror or exc}") from None
    return folder


def load_run_config(path: str | Path) -> dict:
    path = Path(path)
    cfg = read_toml(path, "run file")
    unknown = sorted(set(cfg) - SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; sections: {sorted(SECTIONS)}")
    for sec in ("problem", "topology", "algorithm", "run"):
        if sec not in cfg:
            raise ConfigError(f"{path}: incomplete run file, missing section [{sec}]")
    for sec in SECTIONS & set(cfg):
        if not isinstance(cfg[sec], dict):
            raise ConfigError(f"{path}: [{sec}] must be a table, got {cfg[sec]!r}")
    check_run_section(f"{path}: [run]", cfg["run"])
    reject_unknown(f"{path}: [output]", cfg.get("output", {}), OUTPUT_KEYS)
    if "name" not in cfg["problem"]:
        raise ConfigError(f"{path}: [problem] needs name (an instance or a family)")
    if "name" not in cfg["algorithm"]:
        raise ConfigError(f"{path}: [algorithm] needs name")
    if "iterations" not in cfg["run"]:
        raise ConfigError(f"{path}: [run] needs iterations")
    cfg["_path"] = str(path)
    return cfg


def _constraint(spec, where):
    from minmaxlab.constraints import CONSTRAINTS

    if spec is None:
        return None
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: a constraint is one of {sorted(CONSTRAINTS)}, e.g. "
                          "{ ball = 1.0 } or { box = [-1, 1] }")
    (kind, arg), = spec.items()
    if kind not in CONSTRAINTS:
        raise ConfigError(f"{where}: unknown constraint {kind!r}; constraints: {sorted(CONSTRAINTS)}")
    return CONSTRAINTS[kind](*arg) if isinstance(arg, list) else CONSTRAINTS[kind](arg)


def build_problem(sec: dict, where: str = "[problem]"):
    from minmaxlab.problems import problem

    reject_unknown(where, sec, PROBLEM_KEYS)
    for key in ("params", "noise", "constraints"):
        if key in sec and not isinstance(sec[key], dict):
            raise ConfigError(f"{where}: {key} must be a table, got {sec[key]!r}")
    reject_unknown(f"{where} constraints (players)", sec.get("constraints", {}), PLAYERS)
    reject_unknown(f"{where} noise", sec.get("noise", {}), NOISE_KEYS)
    prob = problem(sec["name"], workers=sec.get("workers"), **sec.get("params", {}))
    if "noise" in sec:
        prob = prob.with_noise(**sec["noise"])
    if "constraints" in sec:
        c = sec["constraints"]
        prob = prob.with_constraints(u=_constraint(c.get("u"), where), v=_constraint(c.get("v"), where))
    return prob


def build_topology(sec: dict, workers: int, where: str = "[topology]"):
    from minmaxlab.topology import TimeVarying, Topology, topology

    if "matrix" in sec:
        try:
            W = np.asarray(sec["matrix"], dtype=float)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: matrix must be a square array of numbers (rows of equal "
                              "length)") from None
        return Topology.from_matrix(W)
    if "edgelist" in sec:
        return Topology.from_edgelist(sec["edgelist"], rule=sec.get("rule", "metropolis"),
                                      **sec.get("params", {}))
    if "name" not in sec:
        raise ConfigError(f"{where}: needs name (or matrix, or edgelist)")
    if sec["name"] == "one_peer_exponential":
        return TimeVarying.one_peer_exponential(workers)
    params = dict(sec.get("params", {}))
    params.update({k: v for k, v in sec.items() if k not in ("name", "rule", "seed", "params")})
    return topology(sec["name"], workers, rule=sec.get("rule"), seed=sec.get("seed", 0), **params)


def build_algorithm(sec: dict):
    from minmaxlab.algorithms import algorithm

    params = {k: v for k, v in sec.items() if k != "name"}
    return algorithm(sec["name"], **params)


def run_config(cfg: dict, out: str | None = None, backend: str = "simulator"):
    """Run a loaded configuration; write the table and its metadata. Returns (trace, paths).

    ``backend``: ``"simulator"`` or ``"mpi"`` (see :func:`minmaxlab.simulate.run`). With ``"mpi"``
    call it on every rank (``mpiexec -n R minmaxlab run FILE --backend mpi``): rank 0 runs its
    share, writes the table and the JSON (the backend, the rank count and the measured timing
    included) and returns (trace, paths); the other ranks return (None, None).
    """
    from minmaxlab.simulate import BACKENDS, run

    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    prob = build_problem(cfg["problem"])
    topo = build_topology(cfg["topology"], prob.workers)
    alg = build_algorithm(cfg["algorithm"])
    r = cfg["run"]
    path = out or cfg.get("output", {}).get("path")
    if path is None:
        stem = Path(cfg["_path"]).stem
        path = os.path.join("results", f"{stem}.csv")
    check_output_path(path)  # before the run, on every rank (the same answer everywhere)
    trace = run(prob, topo, alg, iterations=r["iterations"], seed=r.get("seed", 0),
                z0=cfg["problem"].get("z0"), record=r.get("record"),
                every_iteration=r.get("every_iteration"), backend=backend)
    if trace is None:  # an MPI rank other than 0
        return None, None
    paths = write_trace(trace, path, extra={"config": {k: v for k, v in cfg.items() if k != "_path"},
                                             "config_file": cfg["_path"], "backend": backend})
    return trace, paths


def atomic_write(path: Path, write) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary file beside it, then rename: readers
    never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a cleanup removes only the leftovers of writers that are gone
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_trace(trace, path: str | Path, extra: dict | None = None) -> tuple[Path, Path]:
    """Write the trace's table (CSV or parquet, by suffix) and a JSON of spec, seed, versions and
    git revision beside it. Both writes are atomic."""
    path = Path(path)
    df = trace.to_frame()
    if path.suffix == ".parquet":
        atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    elif path.suffix == ".csv":
        atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    else:
        raise ConfigError(f"output path must end in .csv or .parquet, got {path}")
    meta = {**trace.spec, "status": trace.status, "diverged_at": trace.diverged_at,
            "elapsed_s": trace.elapsed, **(extra or {})}
    meta_path = path.with_suffix(path.suffix + ".json")

    def dump(tmp):
        with open(tmp, "w") as fh:
            json.dump(meta, fh, indent=2, default=str)

    atomic_write(meta_path, dump)
    return path, meta_path
