"""A real Spark standalone cluster on 127.0.0.1: one master and N one-core workers, each its own JVM.

The pip wheel of pyspark has no start-master.sh, so the daemons are started with
`spark-class org.apache.spark.deploy.master.Master` / `...worker.Worker`. Everything binds
to loopback (SPARK_LOCAL_IP, which the web UIs use too).

    python scripts/local_cluster.py --workers 2     # prints the master URL, Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import List, Optional, Sequence

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def listening_pid(port: int) -> int:
    """The pid of the process with a TCP socket listening on this port (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                for line in list(handle)[1:]:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                        inodes.add(f"socket:[{fields[9]}]")
        except OSError:
            pass
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if any(os.readlink(f"/proc/{entry}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{entry}/fd")):
                    return int(entry)
            except OSError:
                pass
    raise LookupError(f"no process listens on port {port}")


def _die_with_parent() -> None:
    """Linux: the daemon (spark-class execs java) gets SIGTERM if this process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class StandaloneCluster:
    """Context manager: start master and workers, wait until all workers registered, stop all."""

    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "1536m", workdir: Optional[str] = None,
                 hosts: Sequence[str] = (LOOPBACK,)):
        """hosts: the loopback addresses the workers bind to, in turn. Spark runs a speculative copy
        only on another host than the straggler's, so a speculation test needs 127.0.0.1 and 127.0.0.2
        (both loopback on Linux)."""
        self.workers, self.cores, self.memory, self.hosts = workers, cores, memory, tuple(hosts)
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="sparkprep-cluster-"))
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://{LOOPBACK}:{self.port}"
        self.processes: List[subprocess.Popen] = []

    def _spawn(self, name: str, *args: str, host: str = LOOPBACK) -> None:
        spark_class = pathlib.Path(sys.executable).parent / "spark-class"
        log = open(self.workdir / f"{name}.log", "wb")
        env = {**os.environ, "SPARK_LOCAL_IP": host, "PYSPARK_PYTHON": sys.executable,
               "SPARK_WORKER_DIR": str(self.workdir / "work"), "SPARK_LOG_DIR": str(self.workdir)}
        self.processes.append(subprocess.Popen([str(spark_class), *args], stdout=log, stderr=subprocess.STDOUT,
                                               env=env, start_new_session=True, preexec_fn=_die_with_parent))

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ui_port}/json/", timeout=2) as response:
                state = json.load(response)
        except OSError:
            return 0
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def worker_pids(self) -> List[int]:
        """The pid of every ALIVE worker JVM: the master's JSON API names each worker's host:port,
        and the process listening on that loopback port is found in /proc (never by name)."""
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ui_port}/json/", timeout=5) as response:
            state = json.load(response)
        ports = [w["port"] for w in state.get("workers", []) if w.get("state") == "ALIVE"]
        return [listening_pid(port) for port in ports]

    def start(self, timeout: float = 90) -> "StandaloneCluster":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                    "--port", str(self.port), "--webui-port", str(self.ui_port))
        for i in range(self.workers):
            host = self.hosts[i % len(self.hosts)]
            self._spawn(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", host,
                        "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(free_port()),
                        "--work-dir", str(self.workdir / f"work-{i}"), self.url, host=host)
        deadline = time.time() + timeout
        while self.alive_workers() < self.workers:
            if time.time() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                                 for p in sorted(self.workdir.glob("*.log")))
                raise RuntimeError(f"standalone cluster did not come up within {timeout}s\n{logs}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run a Spark standalone cluster on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--memory", default="1536m", help="memory per worker")
    args = parser.parse_args(argv)
    # The daemons run in their own sessions: turn SIGTERM (timeout, kill) into a normal
    # exit so that stop() still runs and no JVM outlives this script.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with StandaloneCluster(args.workers, args.cores, args.memory) as cluster:
        print(f"master: {cluster.url}  (UI http://{LOOPBACK}:{cluster.ui_port}, logs {cluster.workdir})", flush=True)
        try:
            while all(p.poll() is None for p in cluster.processes):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
