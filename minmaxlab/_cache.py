"""A guard for numba's disk cache of the package's kernels.

numba invalidates a cached kernel only when its own source file changes, but a cached kernel
carries the compiled code of the kernels it calls, which may live in other files (the engine's
``_simulate`` inlines the operators of ``minmaxlab/_datakernels.py``, say). After an edit or an
upgrade, a stale caller would keep running the old callee. :func:`guard` keeps one stamp over every
source file of the package that uses numba and, when it changes, deletes the package's cached
kernels so that they are compiled again. It runs once per import and costs a hash of the sources
(about a millisecond).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STAMP = "kernels.stamp"


def _digest(root: Path) -> str:
    """Hash of the package's source files that use numba (edits elsewhere keep the cache)."""
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        text = f.read_bytes()
        if b"numba" in text:
            h.update(str(f.relative_to(root)).encode())
            h.update(text)
    return h.hexdigest()


def guard(root: Path | None = None) -> bool:
    """Delete the cached kernels under ``root`` (default: the package) if any source changed since
    the last call; returns True if it deleted them. Failures (a read-only install) are ignored:
    numba then keeps its own cache rules."""
    root = Path(__file__).parent if root is None else Path(root)
    try:
        digest = _digest(root)
        stamp = root / "__pycache__" / STAMP
        if stamp.exists() and stamp.read_text() == digest:
            return False
        for pattern in ("*.nbi", "*.nbc"):
            for f in root.rglob(pattern):
                f.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}")
        tmp.write_text(digest)
        tmp.replace(stamp)  # atomic: concurrent imports see the old or the new stamp
        return True
    except OSError:
        return False
