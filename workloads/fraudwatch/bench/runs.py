"""One measured `fraudwatch` command: wall seconds, CPU seconds and the peak resident memory of
its largest process. Each command runs under a fresh wrapper process (this module as a script),
so that the peak of one run never hides a smaller peak of the next (a process's
children-usage peak only ever grows)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def run_cli(*args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """{seconds, cpu_seconds, peak_rss_gib} of `fraudwatch ARGS...` (raises if it fails)."""
    done = subprocess.run(
        [sys.executable, "-m", "fraudwatch.bench.runs", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"fraudwatch {' '.join(args)} failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fraudwatch.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(done.returncode)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_gib": round(usage.ru_maxrss / 1024**2, 3),
    }


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1:])))
