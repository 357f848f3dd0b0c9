"""A real two-node Ray cluster on loopback, for the cluster tests and the fault benchmark.

Two ``ray start --block`` processes on this machine, each one node of the same cluster:

- the head: GCS, dashboard (also the Ray Jobs API), ``head_cpus`` CPUs, custom resource ``head``;
- a worker node: ``worker_cpus`` CPUs and the custom resource ``worker_node``.

Both nodes use the loopback address 127.0.0.2 (Ray replaces 127.0.0.1 by the machine's outward
IP) and free ports, and the cluster has a temp dir of its own, so a plain ``ray.init()``
elsewhere on the machine never finds it through ``/tmp/ray/ray_current_cluster``. Other Ray
instances may run on the machine at the same time, so ``ray stop`` (which stops every Ray on
the machine) is never used: a node's processes are its ``ray start`` process group (raylet,
GCS, dashboard, agents) plus its workers, which start sessions of their own but inherit an
environment tag from the raylet; stopping or killing a node SIGKILLs exactly those. Linux only
(reads ``/proc``).

Usage::

    with RayCluster() as cluster:
        subprocess.run([python, "driver.py", cluster.address], env=driver_env())
        cluster.kill_worker_node()      # SIGKILL the raylet and the workers of the worker node
        cluster.start_worker_node()     # a fresh worker node joins
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

RAY_BIN = Path(sys.executable).with_name("ray")
NODE_IP = "127.0.0.2"
TAG = "TRADEOFF_TEST_RAY_NODE"  # env var "<temp dir>:<node name>" on every process of a node
PREFIX = "tradeoff-ray-"  # of the cluster's temp dir
OWNER_FILE = "owner.json"  # in the temp dir: the owning process and the nodes' process groups
OBJECT_STORE_BYTES = 100 * 2**20


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def driver_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that joins a :class:`RayCluster` by its address."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", TAG)}
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return {**env, **(extra or {})}


class RayCluster:
    """A head node and one worker node on this machine, started and stopped as a unit.

    Args:
        head_cpus: CPUs the head node offers to tasks.
        worker_cpus: CPUs the worker node offers to tasks.
        health_check_ms: GCS health-check period; a killed node is declared dead after about
            four periods (Ray's default takes ~15 s).
        startup_timeout_s: How long to wait for a node to join, in seconds.
    """

    def __init__(
        self,
        *,
        head_cpus: int = 1,
        worker_cpus: int = 2,
        health_check_ms: int = 500,
        startup_timeout_s: float = 90.0,
    ) -> None:
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        self.health_check_ms = health_check_ms
        self.startup_timeout_s = startup_timeout_s
        self.temp_dir = ""
        self.gcs_port = self.dashboard_port = 0
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    # Public ---------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """The GCS address drivers pass to ``ray.init(address=...)``: ``"127.0.0.2:port"``."""
        return f"{NODE_IP}:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        """The head's dashboard, also the Ray Jobs API: ``"http://127.0.0.1:port"``."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self) -> RayCluster:
        """Start the head, then the worker node; return once both are alive."""
        reap_leftovers()
        self.temp_dir = tempfile.mkdtemp(prefix=PREFIX)
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        try:
            self._start_node("head", self._head_args())
            self._wait_for_node("head")
            self.start_worker_node()
        except BaseException:
            self.stop()
            raise
        return self

    def start_worker_node(self) -> None:
        """Start (or restart, after :meth:`kill_worker_node`) the worker node and wait for it."""
        resources = json.dumps({"worker_node": 1})
        args = ["--address", self.address, f"--num-cpus={self.worker_cpus}"]
        self._start_node("worker", [*args, "--resources", resources])
        self._wait_for_node("worker")

    def kill_worker_node(self) -> None:
        """SIGKILL every process of the worker node at once (raylet, agents, workers): a crash."""
        self._kill("worker")

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one Ray worker process of this cluster (e.g. one running a trial).

        Raises:
            ValueError: ``pid`` is not a process of this cluster.
        """
        if not any(pid in self._node_pids(name) for name in self._procs):
            raise ValueError(f"process {pid} is not a Ray process of this cluster.")
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """SIGKILL both nodes' processes and delete the temp dir; safe to call twice."""
        for name in ("worker", "head"):
            self._kill(name)
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def node_ids(self) -> dict[str, str]:
        """Ray node id (hex) of each running node: ``{"head": ..., "worker": ...}``."""
        ids = {}
        for name in self._procs:
            for pid in self._node_pids(name):
                flag = next((a for a in _cmdline(pid) if a.startswith("--node_id=")), None)
                if flag is not None:
                    ids[name] = flag.split("=", 1)[1]
        return ids

    def alive_nodes(self) -> list[dict[str, Any]]:
        """The ALIVE nodes, as the dashboard's state API lists them (``node_id``, resources)."""
        query = "limit=100&filter_keys=state&filter_predicates=%3D&filter_values=ALIVE"
        with urllib.request.urlopen(f"{self.dashboard_url}/api/v0/nodes?{query}", timeout=10) as r:
            return list(json.loads(r.read())["data"]["result"]["result"])

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Internals ------------------------------------------------------------------------------
    def _head_args(self) -> list[str]:
        return [
            "--head",
            f"--port={self.gcs_port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={free_port()}",
            f"--num-cpus={self.head_cpus}",
            f"--temp-dir={self.temp_dir}",
            "--resources",
            json.dumps({"head": 1}),
        ]

    def _start_node(self, name: str, args: list[str]) -> None:
        common = [
            "--block",  # the processes stay in this command's process group
            f"--node-ip-address={NODE_IP}",
            "--min-worker-port=0",  # 0: the OS picks, so two raylets never race for one port
            "--max-worker-port=0",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            "--disable-usage-stats",
        ]
        period = str(self.health_check_ms)
        env = driver_env(
            {
                TAG: f"{self.temp_dir}:{name}",
                "RAY_health_check_period_ms": period,
                "RAY_health_check_timeout_ms": period,
                "RAY_health_check_failure_threshold": "4",
                "RAY_health_check_initial_delay_ms": "0",
            }
        )
        log = open(Path(self.temp_dir) / f"{name}.out", "ab")  # noqa: SIM115 - closed in _kill
        self._logs[name] = log
        self._procs[name] = subprocess.Popen(
            [str(RAY_BIN), "start", *args, *common],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.temp_dir,
            preexec_fn=_die_with_parent,
        )
        owner = {"pid": os.getpid(), "pgids": [p.pid for p in self._procs.values()]}
        (Path(self.temp_dir) / OWNER_FILE).write_text(json.dumps(owner))

    def _node_pids(self, name: str) -> list[int]:
        popen = self._procs.get(name)
        return [] if popen is None else _ray_pids(f"{self.temp_dir}:{name}", {popen.pid})

    def _kill(self, name: str) -> None:
        popen = self._procs.get(name)
        if popen is None:
            return
        for _ in range(5):  # a dying raylet may still fork a worker: sweep until none is left
            pids = self._node_pids(name)
            if not pids:
                break
            for pid in pids:
                _sigkill(pid)
            _wait_gone(pids, timeout_s=5.0)
        popen.wait(timeout=10)
        del self._procs[name]
        self._logs.pop(name).close()

    def _wait_for_node(self, name: str) -> None:
        """Wait until the node's raylet runs and the cluster lists its id as ALIVE."""
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            node_id = self.node_ids().get(name)
            try:
                if node_id and node_id in {n["node_id"] for n in self.alive_nodes()}:
                    return
            except (OSError, KeyError, ValueError):
                pass  # the dashboard is still starting
            popen = self._procs[name]
            if popen.poll() is not None:
                raise RuntimeError(f"ray start ({name}) exited: {self._tail(name)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} node not alive after {self.startup_timeout_s:g} s")
            time.sleep(0.3)

    def _tail(self, name: str) -> str:
        path = Path(self.temp_dir) / f"{name}.out"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def reap_leftovers() -> None:
    """SIGKILL the processes of clusters whose owner died without stopping them (a test run
    killed with SIGKILL), and delete their temp dirs."""
    for owner_file in Path(tempfile.gettempdir()).glob(f"{PREFIX}*/{OWNER_FILE}"):
        try:
            owner = json.loads(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if _is_live(int(owner["pid"])):
            continue
        for pid in _ray_pids(f"{owner_file.parent}:", set(owner["pgids"])):
            _sigkill(pid)
        shutil.rmtree(owner_file.parent, ignore_errors=True)


# Process helpers ----------------------------------------------------------------------------
def _ray_pids(tag: str, pgids: set[int]) -> list[int]:
    """Live processes whose node tag starts with ``tag``, or Ray processes in ``pgids``.

    The node's own processes (raylet, GCS, dashboard) inherit the tag; its agents get a bare
    environment but stay in the ``ray start`` process group; its workers start sessions of
    their own but inherit the tag.
    """
    prefix = f"{TAG}={tag}".encode()
    found = []
    for pid in _live_pids():
        try:
            env = _read(pid, "environ").split(b"\0")
            in_group = os.getpgid(pid) in pgids and any(v.startswith(b"RAY_") for v in env)
        except OSError:
            continue  # gone meanwhile, or not readable
        if in_group or any(v.startswith(prefix) for v in env):
            found.append(pid)
    return found


def _die_with_parent() -> None:
    """In ``ray start`` before exec: SIGKILL it when this process dies without stopping the
    cluster; Ray's reaper then ends the node's process group (see also reap_leftovers)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _read(pid: int, what: str) -> bytes:
    return Path(f"/proc/{pid}/{what}").read_bytes()


def _cmdline(pid: int) -> list[str]:
    try:
        return _read(pid, "cmdline").decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_live(pid: int) -> bool:
    """Running (not exited, not a zombie waiting to be reaped)."""
    try:
        stat = _read(pid, "stat").decode(errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _live_pids() -> list[int]:
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return [p for p in pids if p != os.getpid() and _is_live(p)]


def _sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_gone(pids: list[int], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(_is_live(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
