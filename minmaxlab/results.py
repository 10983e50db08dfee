"""A study's results folder: when a run counts as finished, and what is left of one that is not.

A run is finished only when its table and its sidecar agree: the sidecar (``<run id>.json``,
written first) records the table's rows, columns and SHA-256, and the table (``<run id>.csv``) is
renamed into place last. A table that is truncated, empty, edited or without its sidecar is not
trusted: the run is computed again and a warning names the file. A run that raised leaves a
``<run id>.failed.json`` naming the error, and is tried again next time. Temporary files carry
their writer's pid, so that one writer never deletes another's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from pathlib import Path

import pandas as pd

from minmaxlab.config import atomic_write


class ResultWarning(UserWarning):
    """A file in a results folder that is not trusted, or that another version wrote."""


_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporary files of writers that are no longer running; returns how many."""
    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        m = _TEMP.match(tmp.name)
        if m is None or not _alive(int(m.group("pid"))):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_run(runs_dir: Path, run_id: str, df: pd.DataFrame, meta: dict) -> None:
    """Write a finished run: the sidecar with the table's fingerprint first, the table last."""
    runs_dir = Path(runs_dir)
    data = df.to_csv(index=False).encode()
    meta = {**meta, "table": {"rows": len(df), "columns": list(map(str, df.columns)),
                              "sha256": _digest(data)}}
    (runs_dir / f"{run_id}.failed.json").unlink(missing_ok=True)

    def dump(tmp):
        with open(tmp, "w") as fh:
            json.dump(meta, fh, indent=1, default=str)

    atomic_write(runs_dir / f"{run_id}.json", dump)
    atomic_write(runs_dir / f"{run_id}.csv", lambda tmp: Path(tmp).write_bytes(data))


def save_failure(runs_dir: Path, run_id: str, error: str, meta: dict) -> None:
    """Record a run that raised (it is tried again by the next invocation)."""
    def dump(tmp):
        with open(tmp, "w") as fh:
            json.dump({**meta, "error": error}, fh, indent=1, default=str)

    atomic_write(Path(runs_dir) / f"{run_id}.failed.json", dump)


def _read_verified(runs_dir: Path, run_id: str) -> tuple[bytes | None, str]:
    """(the table's bytes, "") for a complete run, else (None, why): "missing" when there is no
    table. The bytes checked are the bytes returned, read once."""
    table = Path(runs_dir) / f"{run_id}.csv"
    side = Path(runs_dir) / f"{run_id}.json"
    if not table.exists():
        return None, "missing"
    try:
        meta = json.loads(side.read_text())
        want = meta["table"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"{table}: its sidecar {side.name} is missing, unreadable or has no fingerprint"
    data = table.read_bytes()
    if _digest(data) != want.get("sha256"):
        return None, (f"{table}: its contents differ from those recorded in {side.name} "
                      "(truncated or edited)")
    return data, ""


def untrusted(runs_dir: Path, run_id: str) -> str:
    """Why the saved run ``run_id`` cannot be trusted ("" if it is complete; "missing" if there
    is no table)."""
    return _read_verified(runs_dir, run_id)[1]


def check_runs(runs_dir: Path, run_ids: list[str]) -> list[str]:
    """The run ids to compute: missing ones, and untrusted ones (each named in a warning)."""
    todo = []
    for rid in run_ids:
        why = untrusted(runs_dir, rid)
        if why and why != "missing":
            warnings.warn(f"recomputing a run: {why}", ResultWarning, stacklevel=2)
        if why:
            todo.append(rid)
    return todo


def foreign_writers(runs_dir: Path, run_ids: list[str], provenance: dict) -> list[str]:
    """Reused runs written by another version of the package or another revision, described."""
    seen = set()
    for rid in run_ids:
        try:
            meta = json.loads((Path(runs_dir) / f"{rid}.json").read_text())
        except (OSError, ValueError):
            continue
        rev = meta.get("git_revision")
        ver = (meta.get("versions") or {}).get("minmaxlab")
        if (rev, ver) != (provenance.get("git_revision"),
                          provenance.get("versions", {}).get("minmaxlab")):
            seen.add(f"minmaxlab {ver} at revision {rev}")
    return sorted(seen)


def load_tables(runs_dir: Path, run_ids: list[str]) -> pd.DataFrame:
    """The tables of the finished runs among ``run_ids``, stacked."""
    frames = []
    for rid in run_ids:
        data, why = _read_verified(runs_dir, rid)
        if not why:
            frames.append(pd.read_csv(io.BytesIO(data), low_memory=False))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def failures(runs_dir: Path, run_ids: list[str]) -> dict[str, str]:
    """run id -> error, for the runs among ``run_ids`` that raised and have no table."""
    out = {}
    for rid in run_ids:
        f = Path(runs_dir) / f"{rid}.failed.json"
        if f.exists() and not (Path(runs_dir) / f"{rid}.csv").exists():
            try:
                out[rid] = json.loads(f.read_text()).get("error", "unknown error")
            except (OSError, ValueError):
                out[rid] = "unknown error"
    return out
