"""Time measured on real communication: the MPI backend, one process per worker, over a network
whose bandwidth is limited with ``tc``.

Each of the M ranks runs in a network namespace of its own, with one interface (a veth pair to a
bridge in a hub namespace) whose traffic is rate-limited in both directions by a token bucket
(``tc qdisc ... tbf``): a rank's uplink and downlink each carry ``rate`` Mbit/s, as a node's
network card would. MPICH is told to leave shared memory (``MPIR_CVAR_NOLOCAL=1``) and to use
libfabric's TCP provider on that interface, so every byte between ranks crosses the shaped links;
the qdiscs' byte counters and a ping-pong bandwidth measurement show that it does.

For each bandwidth: the cost model's latency alpha and bandwidth beta are calibrated in the
namespaces by ping-pong between two neighbouring ranks (:func:`minmaxlab.mpi.ping_pong`), then
each method runs, under MPI, the iterations the simulator needs to reach eps (the backends' runs
are the same to the bit, so the MPI run ends where the simulator crossed eps; its own last record
is checked against eps). Measured: the wall-clock time of that run. Predicted: the iterations
times (compute per iteration, calibrated on the unshaped network, plus the cost model's
communication at the calibrated alpha and beta: 2 t rounds of alpha + deg 8 d / beta for DPOSG,
the backend's Allgather for CPOSG). The check: measured / predicted within ``TOLERANCE`` for every
method and bandwidth; its control is the same prediction with the ring all-reduce model for CPOSG
(the model of ALGORITHM.md, which the backend does not use), which must miss it.

Needs root (CAP_NET_ADMIN and the right to create namespaces), ``ip``, ``tc`` and ``mpiexec``;
refuses in one line without them. The namespaces are removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from minmaxlab.config import atomic_write, writable_folder
from minmaxlab.errors import MinmaxlabError

TOLERANCE = 1.5  # measured / predicted must lie in [1 / TOLERANCE, TOLERANCE]
SHAPING_TOLERANCE = 0.15  # the measured bandwidth within 15% of the set rate
# The token bucket: it must hold a packet of the interface (MTU 1500: smaller buckets drop it and
# stall the transfer) and the traffic of about a timer tick (else the rate is not reached: a 3 kB
# bucket passed 322 Mbit/s at 500); every byte beyond it waits for tokens. A larger bucket lets a
# link that was idle send that much at once: with 256 kB, 8 kB messages went at twice the rate.
BURST_SECONDS, MIN_BURST, LIMIT = 1e-3, 3000, "4mb"
MPI_ENV = {"MPIR_CVAR_CH4_NETMOD": "ofi", "MPIR_CVAR_NOLOCAL": "1", "FI_PROVIDER": "tcp",
           "FI_TCP_IFACE": "eth0"}
PROBE_SIZES = (8, 8192, 65536, 262144)  # bytes: the fit of beta leans on the largest


@dataclass(frozen=True)
class Plan:
    """What a netstudy measures: M workers (one rank each) on a ring, the Minty bowl of dimension
    ``dim`` with shifted workers, each method until ||F(zbar)||^2 <= eps, at each rate (Mbit/s)."""

    rates: tuple = (20, 100, 500)
    rounds: tuple = (1, 2, 4)
    dim: int = 2000
    workers: int = 4
    eps: float = 1e-3
    iterations: int = 600  # the simulator's budget to find where each method reaches eps
    timeout: float = 600.0  # seconds for one rate's MPI job

    def __post_init__(self):
        bad = [r for r in self.rates if isinstance(r, bool) or not isinstance(r, (int, float))
               or not math.isfinite(r) or r <= 0]
        if bad or not self.rates:
            raise NetstudyError(f"netstudy: rates must be bandwidths in Mbit/s, numbers > 0, got "
                                f"{list(self.rates)}")
        if any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in self.rounds):
            raise NetstudyError(f"netstudy: rounds must be integers >= 1, got {list(self.rounds)}")

    def methods(self):
        from minmaxlab.algorithms import CPOSG, DPOSG

        return [DPOSG(eta=0.05, rounds=t) for t in self.rounds] + [CPOSG(eta=0.05)]

    def problem(self):
        from minmaxlab.problems import problem

        return problem("minty_bowl", workers=self.workers, dim=self.dim, seed=0, heterogeneity=1.0,
                       shift=0.3)


QUICK = Plan(rates=(20, 100, 500), rounds=(1, 4), dim=1000, timeout=300.0)
FULL = Plan(rates=(10, 50, 250, 1000), rounds=(1, 2, 4, 8))


def burst_bytes(rate_mbit: float) -> int:
    """The token bucket of a link at ``rate_mbit``: about BURST_SECONDS of its traffic."""
    return max(MIN_BURST, int(rate_mbit * 1e6 / 8 * BURST_SECONDS))


def probe_sizes(rate_mbit: float | None) -> tuple:
    """The ping-pong's message sizes at a rate: the largest 16 buckets at least (a message of
    one or two buckets passes partly at the line's speed: 256 kB read 1.7 Gbit/s at a rate of
    1 Gbit/s, whose bucket holds 125 kB)."""
    top = max(PROBE_SIZES[-1], 16 * burst_bytes(rate_mbit)) if rate_mbit else PROBE_SIZES[-1]
    return (*PROBE_SIZES[:-1], top)


class NetstudyError(MinmaxlabError):
    """The netstudy cannot run here (rights, tools) or its network failed."""


def check_rights() -> None:
    """Refuse, in one line, where namespaces and qdiscs cannot be made."""
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise NetstudyError("netstudy: needs root (CAP_NET_ADMIN): it creates network namespaces "
                            "and limits their bandwidth with tc; run it as root")
    missing = [tool for tool in ("ip", "tc", "mpiexec") if shutil.which(tool) is None]
    if missing:
        raise NetstudyError(f"netstudy: needs the commands {', '.join(missing)} (iproute2 for ip "
                            "and tc; pip install mpich mpi4py for mpiexec)")
    # each rank finds its namespace by the PMI_RANK that MPICH's launcher (Hydra) sets
    if "HYDRA" not in _sh("mpiexec", "--version"):
        raise NetstudyError("netstudy: needs MPICH's mpiexec (Hydra), which gives each rank "
                            "PMI_RANK; pip install mpich mpi4py")


def _sh(*cmd, timeout=30.0) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NetstudyError(f"netstudy: `{' '.join(cmd)}` did not finish in {timeout:g} s") from None
    if res.returncode != 0:
        why = (res.stderr or res.stdout).strip().splitlines()
        raise NetstudyError(f"netstudy: `{' '.join(cmd)}` failed: {why[-1] if why else res.returncode}")
    return res.stdout


class Network:
    """M namespaces <prefix>_r<i>, each with eth0 (10.77.0.<i + 1>) on a bridge in <prefix>_hub;
    :meth:`shape` limits every link in both directions. A context manager: leaving it removes
    every namespace it made (and with them the interfaces and qdiscs)."""

    def __init__(self, workers: int, prefix: str | None = None):
        self.workers = workers
        self.prefix = prefix or f"mmlnet{os.getpid()}"
        self.made: list[str] = []

    def ns(self, i: int) -> str:
        return f"{self.prefix}_r{i}"

    def __enter__(self):
        hub = f"{self.prefix}_hub"
        try:
            self._add(hub)
            _sh("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
            _sh("ip", "-n", hub, "link", "set", "br0", "up")
            for i in range(self.workers):
                self._add(self.ns(i))
                _sh("ip", "link", "add", f"h{i}", "netns", hub, "type", "veth", "peer", "name",
                    "eth0", "netns", self.ns(i))
                _sh("ip", "-n", hub, "link", "set", f"h{i}", "master", "br0", "up")
                _sh("ip", "-n", self.ns(i), "link", "set", "lo", "up")
                _sh("ip", "-n", self.ns(i), "addr", "add", f"10.77.0.{i + 1}/24", "dev", "eth0")
                _sh("ip", "-n", self.ns(i), "link", "set", "eth0", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _add(self, name):
        _sh("ip", "netns", "add", name)
        self.made.append(name)

    def _links(self):
        hub = f"{self.prefix}_hub"
        for i in range(self.workers):
            yield self.ns(i), "eth0"  # rank i's uplink
            yield hub, f"h{i}"  # its downlink

    def shape(self, rate_mbit: float | None) -> None:
        """Every link at ``rate_mbit`` Mbit/s in each direction (None: unlimited)."""
        for ns, dev in self._links():
            if rate_mbit is None:
                subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"],
                               capture_output=True, timeout=30)
            else:
                burst = burst_bytes(rate_mbit)
                _sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
                    "rate", f"{rate_mbit:g}mbit", "burst", f"{burst}b", "limit", LIMIT)

    def bytes_shaped(self) -> list[int]:
        """Bytes that went through each link's token bucket so far (its qdisc counter; 0 where a
        link has none)."""
        counts = []
        for ns, dev in self._links():
            out = _sh("ip", "netns", "exec", ns, "tc", "-s", "qdisc", "show", "dev", dev)
            sent = [int(w.split()[1]) for w in out.splitlines() if w.split()[:1] == ["Sent"]]
            counts.append(sent[0] if "tbf" in out and sent else 0)
        return counts

    def __exit__(self, *exc):
        for name in reversed(self.made):
            try:
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass  # the others are still removed
        self.made.clear()
        return False


def _mpi_job(net: Network, job: dict, timeout: float) -> dict:
    """Run :func:`rank_job` on one rank per namespace (mpiexec in this namespace; each rank
    enters its own through ``ip netns exec``); rank 0's result."""
    with tempfile.TemporaryDirectory(prefix="mml_net") as tmp:
        spec, out = Path(tmp) / "job.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps({**job, "out": str(out)}))
        enter = f'exec ip netns exec {net.prefix}_r"$PMI_RANK" "$0" "$@"'
        cmd = ["mpiexec", "-n", str(net.workers), "sh", "-c", enter, sys.executable, "-m",
               "minmaxlab.netstudy", str(spec)]
        env = {**os.environ, **MPI_ENV}
        # its own process group: a timeout or an interrupt stops the launcher's proxies and the
        # ranks too, not the launcher alone
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise NetstudyError(f"netstudy: the MPI job did not finish in {timeout:g} s") from None
        except BaseException:
            _stop(proc)
            raise
        if proc.returncode != 0 or not out.exists():
            lines = [x for x in (stderr + stdout).splitlines() if x.strip()]
            raise NetstudyError(f"netstudy: the MPI job failed ({proc.returncode}): "
                                f"{lines[-1] if lines else 'no output'}")
        return json.loads(out.read_text())


def _stop(proc) -> None:
    """Stop a job's whole process group: SIGTERM, then SIGKILL after 5 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def rank_job(spec_path: str) -> None:
    """On every rank (under mpiexec): the ping-pong calibration between ranks 0 and 1, then each
    method's run of its iterations to eps (after a short warm-up run that loads the kernels);
    rank 0 writes the results to the job's ``out`` (whole, or not at all)."""
    from mpi4py import MPI

    from minmaxlab.algorithms import algorithm
    from minmaxlab.mpi import fit_latency_bandwidth, ping_pong, run_mpi
    from minmaxlab.topology import topology

    job = json.loads(Path(spec_path).read_text())
    plan = Plan(**job["plan"])
    comm = MPI.COMM_WORLD
    pp = ping_pong(comm, sizes=tuple(job["probe_sizes"]), seconds=job["probe_seconds"])
    alpha, beta = fit_latency_bandwidth(pp["sizes"], pp["times"][0])
    prob, topo = plan.problem(), topology("ring", plan.workers)
    runs = []
    for spec, k in job["runs"]:
        alg = algorithm(spec.pop("algorithm"), **spec)
        run_mpi(prob, topo, alg, iterations=3, record=[3], comm=comm)  # warm-up
        comm.Barrier()
        tr = run_mpi(prob, topo, alg, iterations=k, record=[k], comm=comm)
        if comm.Get_rank() == 0:
            last = tr.to_frame().iloc[-1]
            runs.append({"label": alg.label, "method": alg.key, "rounds": getattr(alg, "rounds", 0),
                         "iterations": k, "seconds": tr.elapsed,
                         "stationarity": float(last["stationarity_avg"]),
                         "compute_s_per_iter": tr.spec["timing"]["compute_s_per_iter"],
                         "comm_s_per_iter": tr.spec["timing"]["comm_s_per_iter"]})
    if comm.Get_rank() == 0:
        text = json.dumps({"alpha": alpha, "beta": beta, "ping_pong": {
            "sizes": pp["sizes"], "times": pp["times"][0].tolist()}, "runs": runs})
        atomic_write(Path(job["out"]), lambda tmp: Path(tmp).write_text(text))


def iterations_to_eps(plan: Plan) -> dict:
    """{label: the first iteration at which ||F(zbar)||^2 <= eps} by the simulator (the MPI
    backend's trajectory is the same); raises when a method does not get there."""
    from minmaxlab.simulate import run
    from minmaxlab.topology import topology

    prob, topo = plan.problem(), topology("ring", plan.workers)
    out = {}
    for alg in plan.methods():
        df = run(prob, topo, alg, plan.iterations, record="all", every_iteration=False).to_frame()
        hit = df[df["stationarity_avg"] <= plan.eps]
        if not len(hit):
            raise NetstudyError(f"netstudy: {alg.label} does not reach eps = {plan.eps:g} in "
                                f"{plan.iterations} iterations")
        out[alg.label] = int(hit["iteration"].iloc[0])
    return out


def predicted_seconds(run, compute: float, plan: Plan, allreduce: str = "allgather") -> float:
    """A run's iterations times (compute + the cost model's communication at the run's
    calibrated alpha and beta); on the ring every worker has 2 neighbours."""
    from minmaxlab.costmodel import CostModel

    model = CostModel(alpha=run["alpha"], beta=run["beta"], grad_time=0.0, allreduce=allreduce)
    comm = model.iteration_time(run["method"], plan.dim, plan.workers, deg=2,
                                rounds=max(int(run["rounds"]), 1), oracle_calls=0)
    return run["iterations"] * (compute + comm)


def netstudy(plan: Plan = QUICK, out: str | Path = "netstudy", echo=print) -> dict:
    """Set up the namespaces, measure every method at every rate (and unshaped, to calibrate the
    compute time), tear them down; write ``netstudy.json`` and ``netstudy.csv`` to ``out`` and
    return the results. See the module docstring."""
    import pandas as pd

    from minmaxlab.meta import provenance

    check_rights()
    out = writable_folder(out, "netstudy folder")
    start = time.perf_counter()
    ks = iterations_to_eps(plan)
    echo(f"netstudy: {plan.workers} ranks, Minty bowl of dimension {plan.dim} (messages of "
         f"{8 * plan.dim} bytes), iterations to ||F(zbar)||^2 <= {plan.eps:g} (simulator): "
         + ", ".join(f"{k} {v}" for k, v in ks.items()))
    job = {"plan": asdict(plan), "runs": [[alg.spec(), ks[alg.label]] for alg in plan.methods()],
           "probe_seconds": 0.3}
    rows, shaping = [], []
    with _terminate_as_exit(), Network(plan.workers) as net:
        for rate in (None, *plan.rates):
            net.shape(rate)
            before = net.bytes_shaped()
            res = _mpi_job(net, {**job, "probe_sizes": list(probe_sizes(rate))}, plan.timeout)
            sent = [b - a for a, b in zip(before, net.bytes_shaped(), strict=True)]
            mbit = 8 * res["beta"] / 1e6
            shaping.append({"rate_mbit": rate, "measured_mbit": mbit, "alpha_s": res["alpha"],
                            "bytes_per_link": sent})
            seen = (f"ping-pong {mbit:.1f} Mbit/s, {min(sent)} to {max(sent)} bytes through each "
                    "link's token bucket, " if rate else "")
            echo(f"  rate {'unlimited' if rate is None else f'{rate:g} Mbit/s'}: {seen}"
                 f"alpha {res['alpha']:.1e} s")
            for r in res["runs"]:
                rows.append({"rate_mbit": rate, "alpha": res["alpha"], "beta": res["beta"], **r})
    table = pd.DataFrame(rows)
    table = _predict(table, plan)
    result = {"plan": job["plan"], "iterations_to_eps": ks, "shaping": shaping,
              "table": table.to_dict(orient="records"), "elapsed_s": time.perf_counter() - start,
              **provenance()}
    result["checks"] = _checks(table, shaping, plan, least_bytes=8 * plan.dim * min(ks.values()))
    _write(out, result, table)
    echo("")
    echo(format_table(table, result["checks"]))
    return result


class _terminate_as_exit:
    """SIGTERM raises SystemExit while the namespaces exist, so that they are removed as on
    Ctrl-C (only where this is the main thread: elsewhere signals go there)."""

    def __enter__(self):
        self.old = None
        try:
            self.old = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread
            pass
        return self

    @staticmethod
    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def _predict(table, plan):
    """The prediction of every shaped run, with one compute time per iteration: every method
    makes one oracle call and a few local steps per iteration, so it is calibrated on the
    unshaped network as the median over the methods of their time per iteration less the
    model's communication there (one method's short run can catch a pause of the machine: a
    first version calibrated each method on its own run, and one read 7.4 ms per iteration
    against 1.7 to 2.3 for the others)."""
    base = table[table["rate_mbit"].isna()]
    compute = float(np.median([max(r["seconds"] - predicted_seconds(r, 0.0, plan), 0.0)
                               / r["iterations"] for _, r in base.iterrows()]))
    shaped = table[table["rate_mbit"].notna()].copy()
    for model, col in (("allgather", "predicted_s"), ("ring", "predicted_ring_allreduce_s")):
        shaped[col] = [predicted_seconds(r, compute, plan, allreduce=model)
                       for _, r in shaped.iterrows()]
    shaped["measured_over_predicted"] = shaped["seconds"] / shaped["predicted_s"]
    shaped["compute_s_per_iter_calibrated"] = compute
    return shaped.reset_index(drop=True)


def _within(ratio) -> bool:
    return 1 / TOLERANCE <= ratio <= TOLERANCE


def _checks(table, shaping, plan, least_bytes: int) -> list[dict]:
    """The verdicts: shaping verified (the probe within SHAPING_TOLERANCE of the rate, and at
    least ``least_bytes`` through every link's token bucket: each rank sends at least a model's
    8 d bytes per iteration); every run reached eps; measured / predicted within TOLERANCE, with
    the control (the ring all-reduce model for CPOSG), which must miss it: a control within the
    tolerance too makes the time check fail (it could not have failed)."""
    shaped = [s for s in shaping if s["rate_mbit"]]
    ok_shape = all(abs(s["measured_mbit"] / s["rate_mbit"] - 1) <= SHAPING_TOLERANCE
                   and min(s["bytes_per_link"]) >= least_bytes for s in shaped)
    reached = bool((table["stationarity"] <= plan.eps).all())
    ratios = table["measured_over_predicted"]
    cpo = table[table["method"] == "cposg"]
    ctrl = cpo["seconds"] / cpo["predicted_ring_allreduce_s"]
    control_fails = not all(map(_within, ctrl))
    timed = all(map(_within, ratios)) and control_fails
    return [
        {"check": "shaping", "verdict": "pass" if ok_shape else "fail",
         "measured": ", ".join(f"{s['measured_mbit']:.1f}/{s['rate_mbit']:g}" for s in shaped),
         "predicted": f"ping-pong bandwidth within {SHAPING_TOLERANCE:.0%} of the set rate, "
                      f"at least {least_bytes} bytes through every link's token bucket"},
        {"check": "reached eps", "verdict": "pass" if reached else "fail",
         "measured": f"largest final ||F(zbar)||^2 {table['stationarity'].max():.2e}",
         "predicted": f"<= {plan.eps:g}"},
        {"check": "time model", "verdict": "pass" if timed else "fail",
         "measured": f"measured / predicted {ratios.min():.2f} .. {ratios.max():.2f}",
         "predicted": f"within [1/{TOLERANCE:g}, {TOLERANCE:g}]",
         "control": "fail" if control_fails else "pass",
         "control_measured": f"CPOSG with the ring all-reduce model: {ctrl.min():.2f} .. "
                             f"{ctrl.max():.2f}"},
    ]


def format_table(table, checks) -> str:
    lines = [f"{'rate Mbit/s':>11} {'measured Mbit/s':>15} {'method':<24} {'iterations':>10} "
             f"{'measured s':>10} {'predicted s':>11} {'ratio':>6}"]
    for r in table.itertuples():
        name = f"{r.method} t={r.rounds}" if r.rounds else r.method
        lines.append(f"{r.rate_mbit:>11g} {8 * r.beta / 1e6:>15.1f} {name:<24} "
                     f"{r.iterations:>10d} {r.seconds:>10.3f} {r.predicted_s:>11.3f} "
                     f"{r.measured_over_predicted:>6.2f}")
    lines.append("")
    for c in checks:
        ctrl = f"; control {c['control']} ({c['control_measured']})" if "control" in c else ""
        lines.append(f"{c['check']}: {c['verdict'].upper() if c['verdict'] != 'pass' else 'pass'}"
                     f" ({c['measured']}; {c['predicted']}){ctrl}")
    return "\n".join(lines)


def _write(out: Path, result: dict, table) -> None:
    """netstudy.json and netstudy.csv, each written whole or not at all."""
    text = json.dumps(result, indent=1, default=float)
    atomic_write(out / "netstudy.json", lambda tmp: Path(tmp).write_text(text))
    atomic_write(out / "netstudy.csv", lambda tmp: table.to_csv(tmp, index=False))


if __name__ == "__main__":  # a rank of the MPI job (see _mpi_job)
    rank_job(sys.argv[1])
