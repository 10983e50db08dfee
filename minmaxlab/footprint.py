"""The memory of a run, per worker: what the simulator holds for every worker while it runs.

    mml.bytes_per_worker(problem, topology, algorithm)   # by part, and the total

The parts are the arrays the run allocates or keeps, counted from their shapes (float64 and
uint64 words of 8 bytes):

* ``iterates``: X, Z and the gradient G (3 d words);
* ``state``: the algorithm's own state rows (optimistic Adam's two moments and last step: 3 d
  words for DPOAdam and CPOAdam; a gradient tracker: d words; none for the others);
* ``scratch``: the driver's three work arrays of shape (M, d) (gossip's second buffer, F(z_i)
  and the metrics' work rows);
* ``stream``: the worker's random stream (:data:`minmaxlab.engine.streams.STATE_WORDS` words);
* ``topology``: :attr:`Topology.nbytes` / M: the mixing matrix in CSR form (row pointer, one index
  and one weight per stored entry: 2 per edge plus the diagonal), the edge list, and what it
  has cached;
* ``problem``: :attr:`Problem.nbytes` / M: the problem's arrays (data, per-worker matrices and
  shifts, a finite-sum noise's samples).

What a run holds beyond these does not grow with M: the compiled kernels and the interpreter
(about 250 MB), and the records.
"""

from __future__ import annotations

import numpy as np

from minmaxlab.engine.plans import state_rows
from minmaxlab.engine.streams import STATE_WORDS

WORD = 8


def bytes_per_worker(problem, topology, algorithm) -> dict[str, float]:
    """Bytes per worker of a simulator run, by part (see the module's docstring), with their sum
    under ``"total"``. ``topology`` is a Topology or a TimeVarying sequence."""
    M, d = problem.workers, problem.dim
    seq = topology.sequence if hasattr(topology, "sequence") else [topology]
    parts = {
        "iterates": 3 * d * WORD,
        "state": state_rows(algorithm.plan()) * d * WORD,
        "scratch": 3 * d * WORD,
        "stream": STATE_WORDS * WORD,
        "topology": sum(t.nbytes for t in seq) / M,
        "problem": problem.nbytes / M,
    }
    parts["total"] = float(np.sum(list(parts.values())))
    return parts
