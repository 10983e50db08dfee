"""Where a study's runs execute: on this machine, on the ranks of an MPI job, or on a dask cluster.

* ``local`` (the default): forked worker processes on this machine (:mod:`minmaxlab.workers`).
* ``mpi``: the other processes of an MPI job launched as
  ``mpiexec -n K python -m mpi4py.futures -m minmaxlab study FILE --executor mpi``. Rank 0 runs
  the command and hands the runs to mpi4py.futures' pool, which is the K - 1 other ranks.
* ``dask``: the workers of a running dask.distributed scheduler (``--scheduler ADDRESS``).

Every run writes its own files to the shared results folder with atomic writes, whichever process
runs it, so resuming, tables and verdicts are the same as for a local run. mpi4py and dask are
imported only when asked for: the package never needs them otherwise.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, as_completed
from contextlib import contextmanager

from minmaxlab.errors import ConfigError, did_you_mean

EXECUTORS = ("local", "mpi", "dask")
MPI_LAUNCH = "mpiexec -n K python -m mpi4py.futures -m minmaxlab study FILE --executor mpi"


class ExecutorError(ConfigError):
    """An executor that cannot run here (not installed, not launched as it needs, unreachable)."""


def check_executor(name: str, scheduler: str | None = None) -> None:
    """Raise an ExecutorError, before any work, when ``name`` cannot run the study's runs here."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}{did_you_mean(name, EXECUTORS)}; "
                            f"choose from {list(EXECUTORS)}")
    if scheduler is not None and name != "dask":
        raise ExecutorError("--scheduler is the address of a dask scheduler: it goes with "
                            "--executor dask")
    if name == "mpi":
        check_mpi_pool()
    elif name == "dask":
        if not scheduler:
            raise ExecutorError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786), "
                                "the address of a running dask scheduler")
        if importlib.util.find_spec("distributed") is None:
            raise ExecutorError("--executor dask needs dask.distributed: pip install "
                                "'minmaxlab[dask]'")


def launched_by_mpi4py_futures() -> bool:
    """True when the interpreter was started as ``python -m mpi4py.futures ...``: only then are the
    other ranks a pool of workers (otherwise every rank would run the command itself, or mpi4py
    would try to spawn new processes, which many MPI set-ups cannot do), and only rank 0 runs
    the command."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    for k, word in enumerate(argv[1:], start=1):
        if word == "-mmpi4py.futures" or (word == "-m" and argv[k + 1:k + 2] == ["mpi4py.futures"]):
            return True
    return False


def check_mpi_pool() -> None:
    """The MPI pool is usable: mpi4py is installed, this process is rank 0 of a job of at least 2
    processes started with ``python -m mpi4py.futures``. Otherwise one line says how to launch."""
    how = f"launch it as: {MPI_LAUNCH} (K >= 2: rank 0 hands the runs to the K - 1 others)"
    if importlib.util.find_spec("mpi4py") is None:
        raise ExecutorError("--executor mpi needs mpi4py and an MPI library: pip install "
                            f"'minmaxlab[mpi]', then {how}")
    # checked before MPI starts: under plain mpiexec every rank would run the whole study
    if not launched_by_mpi4py_futures():
        raise ExecutorError(f"--executor mpi needs the pool of python -m mpi4py.futures: {how}")
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_size() < 2:
        raise ExecutorError(f"--executor mpi has no worker processes in an MPI job of 1 process: "
                            f"{how}")


@contextmanager
def pool(name: str, scheduler: str | None = None):
    """A concurrent.futures executor on the worker processes of ``name`` ("mpi" or "dask"; None
    for "local", whose forked processes :mod:`minmaxlab.workers` manages), shut down on exit
    without waiting for runs still going. :func:`check_executor` has accepted ``name`` before."""
    if name == "local":
        yield None
        return
    if name == "mpi":
        from mpi4py.futures import MPIPoolExecutor

        # main=False: the workers need not run `python -m minmaxlab` (the command) to unpickle
        # the work, which lives in the package's modules
        executor, client = MPIPoolExecutor(main=False), None
    else:
        client = _dask_client(scheduler)
        executor = _dask_executor(client)
    try:
        yield executor
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()


def _dask_client(scheduler: str):
    """A client of the dask scheduler at ``scheduler`` (it waits for dask's connect timeout,
    distributed.comm.timeouts.connect in dask's configuration)."""
    from distributed import Client

    try:
        return Client(scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExecutorError(f"--executor dask: no dask scheduler answers at {scheduler!r} "
                            f"({exc})") from None


def _dask_executor(client):
    """dask's concurrent.futures executor, with the ``cancel_futures`` of :func:`run_on` (dask's
    ``shutdown(wait=False)`` cancels every future it still holds)."""
    from distributed.cfexecutor import ClientExecutor

    class DaskExecutor(ClientExecutor):
        def shutdown(self, wait=True, *, cancel_futures=False):
            super().shutdown(wait=wait)

    return DaskExecutor(client, pure=False)  # a run is not a pure function: it writes files


def run_on(executor: Executor, fn: Callable, items: Iterable, on_done: Callable) -> None:
    """``fn(item)`` for every item on ``executor``, handed out in the order of ``items`` (the
    pool starts them in that order), calling ``on_done(result)`` here as each result arrives. On
    Ctrl-C or an error, the runs not started are cancelled and the executor is shut down without
    waiting for those still going, and the exception goes on up; finished runs are on disk."""
    futures = []
    try:
        futures = [executor.submit(fn, item) for item in items]
        for future in as_completed(futures):
            on_done(future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        executor.shutdown(wait=False, cancel_futures=True)
        raise


def in_mpi_pool_job() -> bool:
    """True in rank 0 of a job of more than one process started with ``python -m mpi4py.futures``
    (the other ranks wait for work from it, never in a collective of their own)."""
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is None or not launched_by_mpi4py_futures():
        return False
    try:
        return MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1
    except Exception:  # an MPI that cannot answer: no job to speak of
        return False


def end_mpi_pool_job(code: int) -> None:
    """End every process of the job of :func:`in_mpi_pool_job` now, with exit ``code``: after an
    error or a Ctrl-C, rank 0 must not wait for the runs the other ranks are in the middle of (the
    pool cannot stop a rank inside a compiled run)."""
    MPI = sys.modules["mpi4py.MPI"]
    sys.stdout.flush()
    sys.stderr.flush()
    MPI.COMM_WORLD.Abort(code)
