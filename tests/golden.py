"""Golden trajectories: a SHA-256 of every bit of each shared case's result (final local states
x_i and z_i, and the recorded metric table), so that rebuilding the engine can be shown to change
nothing. The cases are those of tests/mpi_cases.py (every algorithm, topology and noise model,
and the special paths); the MPI tests show the MPI backend equal to the simulator on the same
cases, so the two together pin both backends.

    python tests/golden.py          # compare with tests/golden_trajectories.json
    python tests/golden.py --write  # record them (only for a deliberate change of bits)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mpi_cases import build, cases  # noqa: E402

import minmaxlab as mml  # noqa: E402

FILE = Path(__file__).resolve().parent / "golden_trajectories.json"


def case_id(case: dict) -> str:
    """A short, stable name of a case: what it is, and a hash of its full spec."""
    spec = json.dumps(case, sort_keys=True)
    prob = case["problem"].get("name") or case["problem"].get("user")
    what = f"{prob}|{case['topology']['name']}|{case['algorithm']['name']}"
    return f"{what}|{hashlib.sha256(spec.encode()).hexdigest()[:10]}"


def fingerprint(trace) -> dict:
    """SHA-256 of the final states and of the metric table (every column, in order)."""
    final = hashlib.sha256()
    for arr in (trace.final_x, trace.final_z):
        final.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    table = hashlib.sha256()
    for name, values in trace.columns.items():
        table.update(name.encode())
        table.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return {"final": final.hexdigest(), "table": table.hexdigest(), "status": trace.status,
            "iterations_done": int(trace.iterations_done)}


def compute() -> dict:
    out = {}
    for case in cases():
        prob, topo, alg, kwargs = build(case)
        out[case_id(case)] = fingerprint(mml.run(prob, topo, alg, **kwargs))
    return out


def main(argv) -> int:
    now = compute()
    if "--write" in argv:
        FILE.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(now)} golden trajectories to {FILE}")
        return 0
    golden = json.loads(FILE.read_text())
    changed = sorted(k for k in golden if now.get(k) != golden[k])
    print(f"{len(golden) - len(changed)} of {len(golden)} golden trajectories unchanged")
    for k in changed:
        print(f"  changed: {k}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
