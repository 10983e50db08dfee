"""The ``minmaxlab`` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import math
import platform
import sys
import traceback

from minmaxlab.errors import MinmaxlabError
from minmaxlab.executors import EXECUTORS

INFO_TOPOLOGIES = ("complete", "expander", "exponential", "hypercube", "torus", "ring", "star",
                   "path")


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("minmaxlab", "numpy", "scipy", "numba", "networkx", "pandas", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _params(pairs: list[str]) -> dict:
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise MinmaxlabError(f"--param expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


def cmd_info(args) -> int:
    from minmaxlab import topology_module as topo_mod
    from minmaxlab.problems import format_catalog

    print("minmaxlab: decentralized optimistic min-max methods, checked against their theory\n")
    for k, v in _versions().items():
        print(f"  {k:<11}{v}")
    print("\nProblem catalog (declared constants; `minmaxlab problems --certify` measures them)\n")
    print(format_catalog())
    print(f"\nTopologies with {args.workers} workers (Metropolis-Hastings weights)\n")
    tops = [topo_mod.topology(name, args.workers) for name in INFO_TOPOLOGIES
            if not (name == "hypercube" and args.workers & (args.workers - 1))]
    print(topo_mod.format_table(tops))
    return 0


def cmd_problems(args) -> int:
    from minmaxlab.problems import certify, format_catalog, instance_files, problem

    print(format_catalog())
    if args.certify:
        print("\nMeasured on the box (random pairs and Jacobians): L_pairs must not exceed L;")
        print("tightness = measured / declared L; r_sampled = smallest sampled Minty ratio.\n")
        head = f"{'instance':<28}{'L':>10}{'L_pairs':>10}{'tight':>8}{'r_min':>10}{'r_sampled':>11}"
        print(head)
        print("-" * len(head))
        for name in instance_files():
            prob = problem(name, workers=4)
            c = certify(prob, pairs=args.pairs)
            rmin = "" if prob.r_min is None else f"{prob.r_min:.4f}"
            rs = c.get("r_sampled")
            rs = "" if rs is None else f"{rs:.4f}"
            print(f"{name:<28}{prob.L:>10.4f}{c['L_pairs']:>10.4f}{c['tightness']:>8.3f}"
                  f"{rmin:>10}{rs:>11}")
    return 0


def cmd_topology(args) -> int:
    from minmaxlab import topology_module as topo_mod

    params = _params(args.param)
    if args.rule:
        params["rule"] = args.rule
    if args.seed is not None:
        params["seed"] = args.seed
    print(topo_mod.main_topology(args.name, args.workers, **params))
    return 0


def _run_and_report(job) -> str:
    """Run a loaded run file; the report to print ("" on MPI ranks other than 0)."""
    cfg, args = job
    from minmaxlab.config import run_config

    trace, paths = run_config(cfg, out=args.out, backend=args.backend)
    if trace is None:  # an MPI rank other than 0: rank 0 reports and writes
        return ""
    return _report_run(trace, paths, args)


def cmd_run(args) -> int:
    from minmaxlab.config import check_output_path, load_run_config

    cfg = load_run_config(args.file)
    if args.backend == "mpi":  # under mpiexec: every rank runs here
        report = _run_and_report((cfg, args))
    else:
        # the compiled kernel cannot notice Ctrl-C: run it in a child the parent stops at once
        from minmaxlab.results import remove_stale_temporaries
        from minmaxlab.workers import run_in_child

        try:
            report = run_in_child(_run_and_report, (cfg, args))
        except KeyboardInterrupt:
            out = args.out or cfg.get("output", {}).get("path")
            if out:
                remove_stale_temporaries(check_output_path(out).parent)
            raise
    if report:
        print(report)
    return 0


def _report_run(trace, paths, args) -> str:
    table, meta = paths
    last = trace.to_frame().iloc[-1]
    where = f" on {trace.spec['ranks']} MPI ranks" if args.backend == "mpi" else ""
    lines = [f"{trace.label}: status {trace.status}, {trace.iterations_done} iterations, "
             f"{trace.elapsed:.2f} s{where}",
             f"  final stationarity_local {last.stationarity_local:.3e}, "
             f"consensus_z {last.consensus_z:.3e}"]
    if args.backend == "mpi":
        tm = trace.spec["timing"]
        lines.append(f"  per iteration (max over ranks): compute {tm['compute_s_per_iter']:.2e} s, "
                     f"communication {tm['comm_s_per_iter']:.2e} s")
    lines.append(f"  wrote {table} and {meta}")
    return "\n".join(lines)


def cmd_mpi_calibrate(args) -> int:
    from minmaxlab.mpi import calibrate

    calibrate(workers=args.workers, dim=args.dim, iterations=args.iterations, rounds=args.rounds,
              seconds=args.seconds)
    return 0


def _rates(text: str) -> list[float]:
    """Bandwidths in Mbit/s, comma-separated, each a number > 0."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if not vals or not all(math.isfinite(v) and v > 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected bandwidths in Mbit/s > 0, comma-separated "
                                         f"(e.g. 20,100,500), got {text!r}")
    return vals


def cmd_netstudy(args) -> int:
    from dataclasses import replace

    from minmaxlab.netstudy import FULL, QUICK, netstudy

    plan = FULL if args.full else QUICK
    if args.rates:
        plan = replace(plan, rates=tuple(args.rates))
    res = netstudy(plan, out=args.out)
    print(f"wrote {args.out}/netstudy.json and {args.out}/netstudy.csv")
    return 1 if any(c["verdict"] != "pass" for c in res["checks"]) else 0


def cmd_bench(args) -> int:
    from minmaxlab.bench import bench, format_rows

    if args.gan:
        from minmaxlab.bench import bench_gan, format_gan

        print(format_gan(bench_gan(quick=args.quick, progress=lambda m: print(m, flush=True))))
        return 0
    if args.data:
        from minmaxlab.bench import bench_data, format_data

        print(format_data(bench_data(quick=args.quick, progress=lambda m: print(m, flush=True))))
        return 0
    names = args.only or ("W1", "W2", "W3")
    if args.vs == "jax":
        from minmaxlab import jax_reference

        jax_reference.check_installed()  # before the engine's runs, not after
    rows = bench(names, quick=args.quick, progress=lambda m: print(m, flush=True))
    jax_rows = None
    if args.vs == "jax":
        from minmaxlab.bench import bench_jax, format_jax

        jax_rows = bench_jax(rows, quick=args.quick, progress=lambda m: print(m, flush=True))
    print()
    print(format_rows(rows))
    if jax_rows:
        print()
        print(format_jax(jax_rows))
    return 0


def cmd_study(args) -> int:
    from minmaxlab.rates import format_verdicts
    from minmaxlab.shipped import find_study
    from minmaxlab.study import load_study, run_study

    study = load_study(find_study(args.file), quick=args.quick, problem=args.problem)
    res = run_study(study, out=args.out, jobs=args.jobs, progress=not args.no_progress,
                    executor=args.executor, scheduler=args.scheduler)
    print(f"{study.name}{' (quick)' if study.quick else ''}: {res.computed} runs computed, "
          f"{res.skipped} already done, {res.elapsed:.1f} s; results in {res.folder}")
    if res.verdicts:
        print(format_verdicts(res.verdicts))
    if res.failed_runs:
        print(f"{len(res.failed_runs)} run(s) raised and were left out (tried again next time):")
        for rid, err in sorted(res.failed_runs.items()):
            print(f"  {rid}: {err}")
    if res.control_verdicts:
        print("\nthe controls' own checks (each control must fail):")
        print(format_verdicts(res.control_verdicts))
    return EXIT_FAILED if res.failed else EXIT_OK


def cmd_verify(args) -> int:
    from minmaxlab.report import verify

    print(f"minmaxlab verify: the {'full' if args.full else 'quick'} studies, claim by claim "
          f"(report in {args.out}/)", flush=True)
    res = verify(quick=not args.full, out=args.out, jobs=args.jobs, progress=not args.no_progress,
                 only=args.only,
                 echo=lambda m: print(m, flush=True), problem=args.problem)
    return EXIT_FAILED if res["failed"] else EXIT_OK


def cmd_paper(args) -> int:
    from minmaxlab.report import paper

    paper(results=args.results, out=args.out)
    return 0


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = ("exit codes: 0 when no check failed (inconclusive is not a failure), 1 when a check "
              "failed, 2 on bad input, 130 when interrupted")
PROBLEM_HELP = ("a user's game, FILE.py:FUNCTION or pkg.module:FUNCTION, where FUNCTION(workers, "
                "seed) returns a Problem: every applicable claim runs on it")


class _Parser(argparse.ArgumentParser):
    """Bad arguments end in one line naming the argument, with exit code 2 (argparse would print
    the whole usage first)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    """An integer >= 1 (workers, jobs, pairs, iterations)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _names(text: str) -> list[str]:
    """A comma-separated list of names, none of them empty."""
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _counts(text: str) -> list[int]:
    """A comma-separated list of integers >= 0 (gossip rounds)."""
    try:
        values = [int(n) for n in text.split(",")]
    except ValueError:
        values = [-1]
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return values


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


def _own_version() -> str:
    from minmaxlab import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="minmaxlab",
        description="Verify decentralized optimistic min-max theory (DPOSG and baselines).",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"minmaxlab {_own_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="versions, the problem catalog and the topology table")
    p.add_argument("--workers", type=_count, default=16, help="workers for the topology table")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("problems", help="list the named problem instances with their constants")
    p.add_argument("--certify", action="store_true", help="also measure the constants by sampling")
    p.add_argument("--pairs", type=_count, default=4000, help="random pairs per instance (--certify)")
    p.set_defaults(func=cmd_problems)

    p = sub.add_parser("topology", help="spectral quantities of one topology")
    p.add_argument("name", help="ring, path, torus, complete, star, hypercube, exponential, "
                                "erdos_renyi, expander")
    p.add_argument("--workers", "-M", type=_count, required=True)
    p.add_argument("--rule", help="weight rule: metropolis, maxdegree, lazy")
    p.add_argument("--seed", type=int)
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="builder parameter, e.g. --param p=0.3 or --param alpha=0.5")
    p.set_defaults(func=cmd_topology)

    p = sub.add_parser("run", help="run one configuration from a TOML file")
    p.add_argument("file", help="run file (see minmaxlab/config.py for the format)")
    p.add_argument("--out", type=_path,
                   help="output table (.csv or .parquet); metadata goes beside it (.json)")
    p.add_argument("--backend", choices=("simulator", "mpi"), default="simulator",
                   help="simulator (default) or mpi: one MPI rank per block of workers, launched "
                        "with mpiexec -n R (R must divide the number of workers)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("mpi-calibrate", help="under mpiexec: measure latency and bandwidth between "
                                             "ranks, then DPOSG's communication vs the cost model")
    p.add_argument("--workers", type=_count, default=None,
                   help="workers of the DPOSG run (default 16, or 4 per rank)")
    p.add_argument("--dim", type=_count, default=20, help="model size d of the DPOSG run")
    p.add_argument("--iterations", type=_count, default=2000, help="iterations of the DPOSG run")
    p.add_argument("--rounds", type=_counts, default=[1, 3],
                   help="gossip rounds to time, comma-separated")
    p.add_argument("--seconds", type=_positive, default=0.2,
                   help="seconds of ping-pong per message size and pair")
    p.set_defaults(func=cmd_mpi_calibrate)

    p = sub.add_parser("netstudy", help="as root: time DPOSG and CPOSG on MPI ranks over a "
                                        "bandwidth-limited network (namespaces and tc), measured "
                                        "against the cost model", epilog=EXIT_CODES)
    p.add_argument("--full", action="store_true",
                   help="four bandwidths, t in {1, 2, 4, 8}, d = 2000 (default: the quick "
                        "version, three bandwidths, t in {1, 4}, d = 1000)")
    p.add_argument("--rates", type=_rates, default=None,
                   help="bandwidths in Mbit/s, comma-separated (default 20,100,500 quick; "
                        "10,50,250,1000 full)")
    p.add_argument("--out", default="netstudy", help="folder for netstudy.json and netstudy.csv")
    p.set_defaults(func=cmd_netstudy)

    p = sub.add_parser("verify", help="run the studies and print the claims table (the main job)",
                       epilog=EXIT_CODES)
    p.add_argument("--problem", help=PROBLEM_HELP)
    p.add_argument("--full", action="store_true", help="the full versions (minutes)")
    p.add_argument("--out", type=_path, default="report", help="report folder (default: report/)")
    p.add_argument("--jobs", type=_count, default=None, help="worker processes (default: all cores)")
    p.add_argument("--only", type=_names, help="comma-separated study names")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("paper", help="rebuild the paper figures and tables from saved results")
    p.add_argument("--results", type=_path, default=None, help="results folder (default: results/ or "
                                                   "report/results/)")
    p.add_argument("--out", type=_path, default=None, help="output folder (default: paper/figures/)")
    p.set_defaults(func=cmd_paper)

    p = sub.add_parser("study", help="run a study (a grid of runs) and check its claims",
                       epilog=EXIT_CODES)
    p.add_argument("--problem", help=PROBLEM_HELP + " (through the study's [user] section)")
    p.add_argument("file", help="study file, e.g. studies/rate_vs_iterations.toml, or the name of a "
                                "study that ships with the package, e.g. rate_vs_iterations")
    p.add_argument("--quick", action="store_true", help="the quick version (seconds)")
    p.add_argument("--jobs", type=_count, default=None,
                   help="worker processes (default: all cores; --executor mpi and dask ignore it)")
    p.add_argument("--out", type=_path, default=None, help="results folder (default: results/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where the runs execute: local (default: --jobs processes here), mpi (the "
                        "other ranks of an MPI job launched as: mpiexec -n K python -m "
                        "mpi4py.futures -m minmaxlab study FILE --executor mpi) or dask (the "
                        "workers of --scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running dask scheduler (with --executor dask), e.g. "
                        "tcp://host:8786")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("bench", help="time the engine against a plain-numpy reference")
    p.add_argument("--quick", action="store_true", help="few iterations (a smoke test)")
    p.add_argument("--only", type=_names, help="comma-separated workloads, e.g. W1,W2")
    p.add_argument("--vs", choices=("jax",), help="also time a JAX implementation of the same "
                                                  "runs (needs the bench extra: JAX)")
    p.add_argument("--gan", action="store_true", help="the GAN path: oracle throughput and the "
                                                      "8-Gaussians training goal")
    p.add_argument("--data", action="store_true", help="robust regression (20 workers, 123 features, "
                                                       "batch 32): engine vs numpy")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (already reported)
        return exc.code
    try:
        return args.func(args)
    except MinmaxlabError as exc:
        _stop_parallel_job(exc)
        print(f"minmaxlab: error: {exc}", file=sys.stderr)
        _end_pool_job(EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("minmaxlab: interrupted", file=sys.stderr)
        _end_pool_job(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except MemoryError:
        _stop_parallel_job(MemoryError("not enough memory"))
        print("minmaxlab: error: not enough memory for this run (fewer workers, a smaller model "
              "or fewer recorded points)", file=sys.stderr)
        _end_pool_job(EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `minmaxlab problems | head`
        return EXIT_OK
    except Exception as exc:
        _stop_parallel_job(exc)
        _end_pool_job(1, exc)
        raise


def _end_pool_job(code: int, exc: BaseException | None = None) -> None:
    """Under ``python -m mpi4py.futures`` (``study --executor mpi``), rank 0 alone runs the command
    and reports as a local run does (``exc``: an unexpected error, whose traceback it prints);
    then it ends the job at once, with the same exit code, rather than wait for the runs the
    other ranks are in the middle of."""
    if "mpi4py.MPI" not in sys.modules:
        return
    from minmaxlab.executors import end_mpi_pool_job, in_mpi_pool_job

    if in_mpi_pool_job():
        if exc is not None:
            traceback.print_exception(exc)
        end_mpi_pool_job(code)


def _stop_parallel_job(exc: BaseException) -> None:
    """Under mpiexec, one rank's error ends the whole job instead of leaving the others waiting
    (but not under mpi4py.futures' pool, whose workers wait for work, not for rank 0: see
    :func:`_end_pool_job`)."""
    if "mpi4py.MPI" in sys.modules:
        from minmaxlab.executors import in_mpi_pool_job
        from minmaxlab.mpi import abort_job_if_parallel

        if not in_mpi_pool_job():
            abort_job_if_parallel(exc)


if __name__ == "__main__":
    sys.exit(main())
