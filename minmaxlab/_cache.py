"""numba's disk cache for the package's kernels, stamped with every kernel source of the package.

numba invalidates a cached kernel only when its own source file changes, but a cached kernel
carries the compiled code of the kernels it calls, which may live in other files (the engine's
``simulate`` inlines the operators of ``minmaxlab/engine/datarows.py``, say). After an edit or an
upgrade, a stale caller would keep running the old callee. So the package's kernels are cached
by locators whose source stamp is the file's own stamp *and* a digest of every source file of the
package that uses numba: any such edit invalidates all of them, and numba recompiles each kernel
at its next call and overwrites the stale entry. Nothing is deleted, and nothing is read before a
kernel is first cached or loaded (the digest, about a millisecond, is computed once per process).

:func:`register` puts the locators in front of numba's own; it must run before the kernel
modules are imported (numba picks a kernel's locator when the kernel is decorated), which is why
the package's ``__init__`` calls it first. Files outside the package keep numba's locators.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

ROOT = Path(__file__).resolve().parent


def source_digest(root: Path = ROOT) -> str:
    """Hash of the package's source files that use numba (edits elsewhere keep the cache)."""
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        text = f.read_bytes()
        if b"numba" in text:
            h.update(str(f.relative_to(root)).encode())
            h.update(text)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _digest_once(root: Path) -> str:
    return source_digest(root)


def _inside(py_file, root: Path) -> bool:
    try:
        Path(py_file).resolve().relative_to(root)
    except (OSError, ValueError):
        return False
    return True


class PackageStamp:
    """Mixin: a locator for the files under ``root`` only, whose stamp includes the digest of
    every kernel source under ``root``."""

    root: Path = ROOT

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _inside(py_file, cls.root):
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return (super().get_source_stamp(), _digest_once(self.root))


class UserProvidedLocator(PackageStamp, caching.UserProvidedCacheLocator):
    """The folder named by NUMBA_CACHE_DIR, when set (numba's own first choice too)."""


class InTreeLocator(PackageStamp, caching.InTreeCacheLocator):
    """The package's ``__pycache__`` (a writable install)."""


class UserWideLocator(PackageStamp, caching.UserWideCacheLocator):
    """The user's cache folder (a read-only install)."""


LOCATORS = (UserProvidedLocator, InTreeLocator, UserWideLocator)


def register(locators=LOCATORS) -> None:
    """Put ``locators`` first in numba's list of cache locators (once; idempotent)."""
    classes = caching.CacheImpl._locator_classes
    classes[:0] = [c for c in locators if c not in classes]
