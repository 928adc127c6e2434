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
from typing import Dict, Optional, Sequence

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
