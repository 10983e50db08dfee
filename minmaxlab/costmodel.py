"""Latency/bandwidth model of one iteration (ALGORITHM.md, "Communication cost model").

An iteration costs compute + communication. With per-message latency ``alpha`` (s), bandwidth
``beta`` (bytes/s), model size d floats (8 bytes each) and max degree ``deg``:

* DPOSG: 2 t rounds x (alpha + deg * 8d / beta) with messages to neighbours serialized, or
  2 t rounds x (alpha + 8d / beta) when they go out in parallel (``parallel=True``); the
  single-exchange variant has t rounds;
* CPOSG by ring all-reduce: 2 (M - 1) alpha + 2 (M - 1) / M * 8d / beta;
* CPOSG by parameter server: 2 alpha + 2 M 8d / beta (the server's link is the bottleneck);
* CPOSG by Allgather (``allreduce="allgather"``, the MPI backend's exact average, which adds the
  gathered rows in worker order for the simulator's bits): ceil(log2 M) alpha + (M - 1) 8d / beta.

Compute: ``grad_time`` seconds per oracle call (workers compute in parallel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minmaxlab.algorithms import phase_counts
from minmaxlab.errors import AlgorithmError, MinmaxlabError


@dataclass(frozen=True)
class CostModel:
    alpha: float = 1e-4
    beta: float = 1e9
    grad_time: float = 1e-3
    parallel: bool = False
    allreduce: str = "ring"  # or "server", "allgather"

    def __post_init__(self):
        for k in ("alpha", "beta", "grad_time"):
            v = getattr(self, k)
            if not np.all(np.asarray(v) >= 0) or (k == "beta" and not np.all(np.asarray(v) > 0)):
                raise MinmaxlabError(f"cost model: {k} must be {'> 0' if k == 'beta' else '>= 0'}")
        if self.allreduce not in ("ring", "server", "allgather"):
            raise MinmaxlabError("cost model: allreduce must be 'ring', 'server' or 'allgather'")

    def gossip_round(self, d: int, deg: int):
        msg = 8.0 * d / self.beta
        return self.alpha + (msg if self.parallel else deg * msg)

    def allreduce_time(self, d: int, workers: int):
        """One exact average of d floats over ``workers`` workers (ring, parameter server or
        Allgather)."""
        M = workers
        if M == 1:
            return 0.0
        if self.allreduce == "ring":
            return 2 * (M - 1) * self.alpha + 2 * (M - 1) / M * 8.0 * d / self.beta
        if self.allreduce == "allgather":
            return math.ceil(math.log2(M)) * self.alpha + (M - 1) * 8.0 * d / self.beta
        return 2 * self.alpha + 2 * M * 8.0 * d / self.beta

    def iteration_time(self, algorithm: str, d: int, workers: int, deg: int = 2, rounds: int = 1,
                       oracle_calls: int = 1):
        """Modelled seconds per iteration of ``algorithm`` (a key: dposg, dposg_single, cposg, ...):
        its gossip phases and exact averages come from its plan
        (:func:`minmaxlab.algorithms.phase_counts`)."""
        try:
            _, gossips, averages = phase_counts(algorithm)
        except AlgorithmError:
            raise MinmaxlabError(f"cost model: unknown algorithm {algorithm!r}") from None
        comm = gossips * rounds * self.gossip_round(d, deg)
        if averages:
            comm = comm + averages * self.allreduce_time(d, workers)
        return oracle_calls * self.grad_time + comm
