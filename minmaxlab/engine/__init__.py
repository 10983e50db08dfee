"""The engine: numba kernels that both backends (the simulator and MPI) run. Internal: the
package's public API is ``minmaxlab``; these modules are its parts, each small and named after
what it does.

- ``streams``: every worker's random stream (Philox4x32-10 keyed by seed and worker), uniforms
  and ziggurat normals.
- ``families``: the local operators F_i of the library's problem families and their dispatch;
  ``mlp`` (the GAN's networks) and ``datarows`` (the data-driven families) are families too.
- ``oracle``: a stochastic oracle call of every worker (operator plus noise); the mean operator.
- ``projections``, ``updates``: constraint sets; the local steps and optimistic Adam.
- ``gossip``: gossip rounds and exact averaging.
- ``plans``: each algorithm as a plan of phases; its costs counted from the plan.
- ``metrics``: the recorded measures and the divergence check.
- ``driver``: a whole simulated run in one compiled call.
- ``chain``: the functions that reach the operator, for the library or a user operator.

Arrays and scalars only; no printing; no global state. Importing the engine compiles nothing.
"""
