"""Worker processes for a study's runs that stop when they should: on Ctrl-C, and with their parent.

Workers ignore SIGINT: the parent alone decides, and on Ctrl-C (or any error) it kills them at
once, so a study stops within a moment instead of finishing its queue; a second Ctrl-C during
that clean-up is ignored rather than left to deadlock it. On Linux each worker asks the kernel to
kill it when its parent dies (PR_SET_PDEATHSIG), so a killed study leaves no worker behind even
while one sits inside a long compiled kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import signal
from collections.abc import Callable, Iterable

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: orphans end when their run ends
        pass


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()


def check_jobs(jobs) -> None:
    """``jobs`` is None (all cores) or a number of worker processes >= 1."""
    from minmaxlab.errors import ConfigError

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"jobs must be an integer >= 1 (worker processes), got {jobs!r}")


def run_all(fn: Callable, items: Iterable, jobs: int, on_done: Callable) -> None:
    """``fn(item)`` for every item in ``jobs`` forked processes, calling ``on_done(result)`` in
    the parent as each finishes. On Ctrl-C or an error the workers are killed and the exception
    goes on up; what they were writing is left as temporaries of dead writers."""
    pool = mp.get_context("fork").Pool(processes=jobs, initializer=_init_worker)
    try:
        for result in pool.imap_unordered(fn, items):
            on_done(result)
        pool.close()
    except BaseException:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            pool.terminate()
            pool.join()
        finally:
            signal.signal(signal.SIGINT, previous)
        raise
    pool.join()


def run_in_child(fn: Callable, arg):
    """``fn(arg)`` in one forked worker, its result returned: a long compiled call that cannot
    notice Ctrl-C itself is stopped at once by its parent (see :func:`run_all`)."""
    results = []
    run_all(fn, [arg], 1, results.append)
    return results[0]
