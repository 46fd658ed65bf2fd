"""A Spark standalone cluster on 127.0.0.1: one master and one worker (1 core, 1 GiB).

Both run from pip's pyspark (its `bin/spark-class` and jars; SPARK_HOME is the package), each
in its own JVM with a small daemon heap, on free ports. Logs (and the worker's executor logs,
under `work/`) live in the state directory; `stop` ends exactly the two recorded PIDs, worker
first. The master's web UI answers `/json` (workers, running and completed applications),
which is how a test sees that a job ran on this cluster.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.servers.process_control import (
    ServerStartError,
    spawn,
    stop_pid,
    wait_until,
    write_pid,
)

NAME = "spark_standalone"
MASTER, WORKER = "spark-master", "spark-worker"
WORKER_CORES = 1
WORKER_MEMORY = "1g"
DAEMON_HEAP = "256m"  # the master and worker daemons; executors get their own JVM
START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class StandaloneCluster:
    #: What FRAUDWATCH_SPARK_MASTER takes: spark://127.0.0.1:PORT.
    master_url: str
    #: The master's web UI; `status()` reads its /json.
    web_url: str
    state_dir: Path

    def status(self) -> dict:
        """The master's JSON status: workers, activeapps, completedapps, ..."""
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=10) as response:
            return json.load(response)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def environment() -> dict[str, str]:
    """The daemons' environment: loopback only, small heaps, this interpreter for Python."""
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": DAEMON_HEAP,
        "PYSPARK_PYTHON": sys.executable,
    }


def start(state_dir: Path) -> StandaloneCluster:
    """Start the master, then a worker registered with it; return once the worker is ALIVE."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    port, web_port = _free_port(), _free_port()
    cluster = StandaloneCluster(
        f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", state_dir
    )
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = environment()
    # A properties file in the state directory on each command line: the marker stop() checks
    # before it signals a PID.
    properties = state_dir / "spark-defaults.conf"
    properties.write_text("# tests/servers/spark_standalone.py: a test cluster on 127.0.0.1\n")
    master_log = state_dir / f"{MASTER}.log"
    master = spawn(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(web_port),
            "--properties-file",
            str(properties),
        ],
        master_log,
        cwd=state_dir,
        env=env,
    )
    write_pid(state_dir, MASTER, master.pid)
    try:
        wait_until(
            lambda: cluster.status().get("status") == "ALIVE",
            what="Spark master",
            process=master,
            log_path=master_log,
            timeout=START_TIMEOUT_S,
        )
        worker_log = state_dir / f"{WORKER}.log"
        worker = spawn(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                cluster.master_url,
                "--host",
                "127.0.0.1",
                "--port",
                str(_free_port()),
                "--webui-port",
                str(_free_port()),
                "--cores",
                str(WORKER_CORES),
                "--memory",
                WORKER_MEMORY,
                "--work-dir",
                str(state_dir / "work"),
                "--properties-file",
                str(properties),
            ],
            worker_log,
            cwd=state_dir,
            env=env,
        )
        write_pid(state_dir, WORKER, worker.pid)
        wait_until(
            lambda: any(w.get("state") == "ALIVE" for w in cluster.status().get("workers", [])),
            what="Spark worker",
            process=worker,
            log_path=worker_log,
            timeout=START_TIMEOUT_S,
        )
    except (ServerStartError, OSError):
        stop(state_dir)
        raise
    return cluster


def stop(state_dir: Path) -> None:
    """Stop the worker (its executors end with it), then the master; only the recorded PIDs."""
    state_dir = Path(state_dir).resolve()
    marker = str(state_dir / "spark-defaults.conf")
    for name in (WORKER, MASTER):
        stop_pid(state_dir, name, marker=marker, timeout=30.0)
