"""One measured `fraudwatch` command: wall seconds, CPU seconds, the peak resident memory of
its largest process and (sampled every 0.5 s) of its whole process tree. Each command runs
under a fresh wrapper process (this module as a script), so that the peak of one run never
hides a smaller peak of the next (a process's children-usage peak only ever grows)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_cli(*args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """{seconds, cpu_seconds, peak_rss_gib, peak_tree_rss_gib} of `fraudwatch ARGS...` (raises
    if it fails). CPU seconds and the largest process's peak count the processes the command
    waited for; a Spark JVM it does not wait for shows only in the sampled tree peak."""
    done = subprocess.run(
        [sys.executable, "-m", "fraudwatch.bench.runs", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        # The cause first (a JVM's stack trace can bury it), then the end of the output.
        causes = [x for x in lines if "Error" in x or "Exception" in x or "error:" in x][:5]
        tail = "\n".join([*causes, "...", *lines[-10:]])
        raise RuntimeError(f"fraudwatch {' '.join(args)} failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc), summed (pages
    shared between them, e.g. forked workers', count once per process): a Spark run's JVM is
    a grandchild that a children-usage peak never sees."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _measure(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: progress bars never block
        process = subprocess.Popen(
            [sys.executable, "-m", "fraudwatch.cli", *args],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        tree_peak = 0
        while process.poll() is None:
            tree_peak = max(tree_peak, _tree_rss_bytes(process.pid))
            time.sleep(0.5)
        wall = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            sys.stderr.write(errors.read())
            raise SystemExit(process.returncode)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_gib": round(usage.ru_maxrss / 1024**2, 3),
        "peak_tree_rss_gib": round(tree_peak / 1024**3, 3),
    }


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1:])))
