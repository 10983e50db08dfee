"""Provenance carried by every saved result: versions and the git revision."""

from __future__ import annotations

import functools
import importlib.metadata as md
import platform
import subprocess
from pathlib import Path

_PACKAGES = ("minmaxlab", "numpy", "scipy", "numba", "networkx", "pandas")


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """The commit of the package's own checkout (with ``-dirty`` if it has uncommitted changes),
    or ``none`` when the package does not sit at the top of a git checkout of itself (an installed
    wheel: never the revision of whatever repository a virtual environment happens to be in)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists() or not (root / "pyproject.toml").exists():
        return "none"
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict:
    return {"versions": versions(), "git_revision": git_revision()}
