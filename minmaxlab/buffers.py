"""The bytes that numpy arrays hold, each buffer counted once (for the memory a run holds, see
:mod:`minmaxlab.footprint`). No import from the package: topologies and problems use it."""

from __future__ import annotations

import numpy as np


def nbytes_of(objects) -> int:
    """Bytes of the numpy arrays among ``objects``, each underlying buffer counted once (views of
    one array count as that array)."""
    seen, total = set(), 0
    for a in objects:
        if not isinstance(a, np.ndarray):
            continue
        base = a
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) not in seen:
            seen.add(id(base))
            total += base.nbytes
    return total
