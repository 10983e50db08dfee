"""minmaxlab: verify decentralized optimistic min-max theory (DPOSG and its baselines) in practice."""

import importlib as _importlib

from minmaxlab import _cache

# numba picks a kernel's cache locator when the kernel is defined: before the kernel modules below
_cache.register()

from minmaxlab.algorithms import (
    ALGORITHMS,
    CPOSG,
    DEG,
    DEGMC,
    DMHSGD,
    DPOSG,
    DPOSGGT,
    DSGDA,
    GTDA,
    OSG,
    Algorithm,
    CPOAdam,
    DPOAdam,
    Gossiping,
    LocalOSGDA,
    LocalSGDA,
    algorithm,
)
from minmaxlab.constraints import L1, Ball, Box, Simplex
from minmaxlab.errors import (
    AlgorithmError,
    ConfigError,
    MinmaxlabError,
    ProblemError,
    TopologyError,
)
from minmaxlab.footprint import bytes_per_worker
from minmaxlab.problems import FAMILIES, Noise, Problem, certify, problem
from minmaxlab.problems.data import accuracy
from minmaxlab.simulate import Trace, run
from minmaxlab.topology import TimeVarying, Topology, topology

# `minmaxlab.topology` is the builder function; the module stays reachable under this name
topology_module = _importlib.import_module("minmaxlab.topology")

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS", "Algorithm", "AlgorithmError", "Ball", "Box", "CPOAdam", "CPOSG", "ConfigError",
    "DEG", "DEGMC", "DMHSGD", "DPOAdam", "DPOSG", "DPOSGGT", "DSGDA", "FAMILIES", "GTDA", "Gossiping", "L1",
    "LocalOSGDA", "LocalSGDA", "MinmaxlabError", "Noise", "OSG",
    "Problem", "ProblemError", "Simplex", "TimeVarying", "Topology", "TopologyError", "Trace",
    "accuracy", "algorithm", "bytes_per_worker", "certify", "problem", "run", "topology",
    "topology_module", "__version__",
]
