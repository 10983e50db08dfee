"""Run the cases of a JSON file with the MPI backend; rank 0 writes the results to an .npz.

    mpiexec -n 4 python tests/mpi_driver.py cases.json results.npz

For case i the archive holds ``i/final_x``, ``i/final_z``, ``i/status`` ([ok, iterations_done,
diverged_at or -1]) and ``i/col/<name>`` for every column of the trace; ``ranks`` holds the size
of MPI_COMM_WORLD. Used by tests/test_mpi.py.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mpi4py import MPI  # noqa: E402
from mpi_cases import build  # noqa: E402

from minmaxlab.mpi import run_mpi  # noqa: E402


def main(cases_file: str, out_file: str) -> None:
    comm = MPI.COMM_WORLD
    cases = json.loads(Path(cases_file).read_text())
    res = {"ranks": np.array([comm.Get_size()])}
    for i, case in enumerate(cases):
        prob, topo, alg, kwargs = build(case)
        tr = run_mpi(prob, topo, alg, **kwargs)
        if tr is None:
            continue
        res[f"{i}/final_x"] = tr.final_x
        res[f"{i}/final_z"] = tr.final_z
        res[f"{i}/status"] = np.array([tr.status == "ok", tr.iterations_done,
                                       -1 if tr.diverged_at is None else tr.diverged_at])
        for name, values in tr.columns.items():
            res[f"{i}/col/{name}"] = values
    if comm.Get_rank() == 0:
        np.savez(out_file, **res)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
