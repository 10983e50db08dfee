"""Where the named problem instances and the study files that ship with the package live.

In a source checkout they are the top-level ``problems/`` and ``studies/`` folders; a built wheel
carries the same files as the packages ``minmaxlab.shipped_problems`` and
``minmaxlab.shipped_studies`` (mapped from those folders by ``pyproject.toml``), read here through
importlib.resources, so an installed package finds its data wherever it sits.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from minmaxlab.errors import ConfigError, did_you_mean

KINDS = {"problems": "minmaxlab.shipped_problems", "studies": "minmaxlab.shipped_studies"}


def shipped_dir(kind: str) -> Path | None:
    """The folder of shipped ``kind`` ("problems" or "studies"), or None if there is none."""
    try:
        found = importlib.resources.files(KINDS[kind])
        # a data folder without __init__.py is a namespace package, whose Traversable is not a
        # path itself: its files are (the package is a plain folder in the wheel)
        child = next((c for c in found.iterdir() if c.is_file()), None)
        if child is not None:
            return Path(str(child)).parent
    except (ModuleNotFoundError, TypeError, ValueError, OSError):
        pass
    source = Path(__file__).resolve().parents[1] / kind  # a source checkout, not installed
    return source if source.is_dir() else None


def studies_dir() -> Path:
    """$MINMAXLAB_STUDIES, or the studies that ship with the package (the project's studies/)."""
    env = os.environ.get("MINMAXLAB_STUDIES")
    if env:
        return Path(env)
    found = shipped_dir("studies")
    return found if found is not None else Path("studies")


def study_files() -> list[Path]:
    d = studies_dir()
    if not d.is_dir():
        raise ConfigError(f"no studies folder at {d} (set MINMAXLAB_STUDIES)")
    return sorted(d.glob("*.toml"))


def find_study(name_or_path: str | Path) -> Path:
    """A study file: a path, or the name of a shipped study (``rate_vs_iterations``)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".toml" and path.parent != Path("."):
        return path
    shipped = studies_dir() / f"{path.stem}.toml"
    if shipped.exists():
        return shipped
    if path.suffix != ".toml":  # a name: say which shipped study it may have meant
        names = [f.stem for f in study_files()]
        starts = [n for n in names if n.startswith(path.stem)]
        hint = f" (did you mean {starts[0]!r}?)" if len(starts) == 1 else did_you_mean(path.stem, names)
        raise ConfigError(f"study file not found: {path}{hint}; shipped studies: {', '.join(names)}")
    return path
