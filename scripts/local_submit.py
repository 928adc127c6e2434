"""Build and run `spark-submit jobs/<job>.py ...` on this machine, the way the README does.

Used by the integration tests and the benchmarks, so both run exactly what users run:
the venv's Python on the workers, conf/local.conf, quiet logging, loopback only.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

REPO = pathlib.Path(__file__).resolve().parents[1]


def submit_env() -> Dict[str, str]:
    """The environment for spark-submit: workers must run this interpreter, not python3 on PATH."""
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1"}


def submit_command(job: str, args: Sequence[str], master: str = "local[2]",
                   conf: Optional[Dict[str, str]] = None, profile: str = "local",
                   py_files: Sequence[str] = ()) -> list:
    """The spark-submit command line for jobs/<job>.py (or a script path) with conf/<profile>.conf."""
    cmd = [str(pathlib.Path(sys.executable).parent / "spark-submit"), "--master", master,
           "--properties-file", str(REPO / "conf" / f"{profile}.conf"),
           "--driver-java-options", f"-Dlog4j2.configurationFile=file:{REPO / 'conf' / 'log4j2.properties'}"]
    for key, value in (conf or {}).items():
        cmd += ["--conf", f"{key}={value}"]
    if py_files:
        cmd += ["--py-files", ",".join(map(str, py_files))]
    app = job if job.endswith(".py") else str(REPO / "jobs" / f"{job}.py")
    return cmd + [app, *map(str, args)]


def spark_submit(job: str, *args, master: str = "local[2]", conf: Optional[Dict[str, str]] = None,
                 timeout: float = 1800, capture: bool = True, env: Optional[Dict[str, str]] = None,
                 profile: str = "local", py_files: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run the job; spark-submit forwards the Python driver's stderr into its stdout."""
    return subprocess.run(submit_command(job, args, master, conf, profile, py_files),
                          env={**submit_env(), **(env or {})},
                          cwd=REPO,
                          capture_output=capture, text=True, timeout=timeout)


def timed_spark_submit(job: str, *args, master: str = "local[2]",
                       conf: Optional[Dict[str, str]] = None) -> float:
    """Wall seconds of one spark-submit run (JVM start included); exits with its output if it fails."""
    started = time.perf_counter()
    result = spark_submit(job, *args, master=master, conf=conf)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{job} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall


def descendants(pid: int) -> list:
    """Every live process under pid, from /proc."""
    children: Dict[int, list] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def process_peak(pid: int) -> Optional[Tuple[str, int, str]]:
    """(name, peak resident kB (VmHWM), command line) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        with open(f"/proc/{pid}/cmdline") as handle:
            cmdline = handle.read().replace("\0", " ")
        return fields["Name"].strip(), int(fields.get("VmHWM", "0 kB").split()[0]), cmdline
    except (OSError, KeyError, ValueError):
        return None


def process_kind(name: str, cmdline: str) -> Optional[str]:
    """A spark-submit run's processes: the JVM (driver and executor in local mode), the Python driver
    (jobs/<job>.py) and the Python workers (pyspark's or sparkprep's daemon and its forks)."""
    if name == "java":
        return "jvm"
    if name.startswith("python"):
        return "python driver" if "jobs/" in cmdline else "python workers"
    return None


def process_cpu(pid: int) -> Optional[float]:
    """CPU seconds (user + system, every thread) a process has used so far, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def watched_submit(cmd: Sequence[str], kind_of: Callable[[str, str], Optional[str]], timeout: float = 1800,
                   cpu: Optional[Dict[str, float]] = None) -> Tuple[subprocess.CompletedProcess, Dict[str, float]]:
    """Run a spark-submit command, polling every process under it; returns the result and the peak
    resident MB per kind, where kind_of(name, cmdline) names a process's kind (or None to ignore it).
    cpu: filled with the CPU seconds per kind (each process's last poll: a process's last 0.1 s
    before it exits is not seen)."""
    peaks: Dict[str, int] = {}
    used: Dict[int, Tuple[str, float]] = {}
    started = time.monotonic()
    with subprocess.Popen(list(map(str, cmd)), env=submit_env(), cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        import threading

        lines: list = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        while proc.poll() is None:
            if time.monotonic() - started > timeout:
                proc.kill()
            for child in [proc.pid, *descendants(proc.pid)]:
                seen = process_peak(child)
                kind = seen and kind_of(seen[0], seen[2])
                if kind:
                    peaks[kind] = max(peaks.get(kind, 0), seen[1])
                    spent = process_cpu(child)
                    if spent is not None:
                        used[child] = (kind, spent)
            time.sleep(0.1)
        reader.join()
    if cpu is not None:
        for kind, spent in used.values():
            cpu[kind] = cpu.get(kind, 0.0) + spent
    result = subprocess.CompletedProcess(cmd, proc.returncode, "".join(lines), "")
    return result, {k: round(v / 1024, 1) for k, v in peaks.items()}
