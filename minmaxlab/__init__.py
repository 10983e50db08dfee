"""minmaxlab: verify decentralized optimistic min-max theory (DPOSG and its baselines) in practice."""

from minmaxlab.errors import ConfigError, MinmaxlabError, ProblemError, TopologyError
from minmaxlab.problems import FAMILIES, Noise, Problem, certify, problem

try:
    from minmaxlab.topology import Topology, topology
except ImportError:  # pragma: no cover (transient while building)
    pass

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "MinmaxlabError", "ProblemError", "TopologyError",
    "FAMILIES", "Noise", "Problem", "certify", "problem",
    "Topology", "topology", "__version__",
]
