"""Start a server as a detached process, record its PID, wait for it, and stop only that PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ServerStartError(RuntimeError):
    """A server did not come up; the message names the server and its log file."""


def spawn(
    command: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session (so Ctrl-C in the caller does not reach it)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def write_pid(state_dir: Path, name: str, pid: int) -> Path:
    path = state_dir / f"{name}.pid"
    path.write_text(f"{pid}\n")
    return path


def read_pid(state_dir: Path, name: str) -> int | None:
    path = state_dir / f"{name}.pid"
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def stop_pid(state_dir: Path, name: str, *, marker: str, timeout: float = 30.0) -> bool:
    """Stop the process in `<state_dir>/<name>.pid`: SIGTERM, then SIGKILL after `timeout` s.

    The PID is signalled only when its command line still contains `marker` (a path unique to
    this state directory), so a recycled PID belonging to someone else is never touched.
    Returns True when a process was stopped.
    """
    pid = read_pid(state_dir, name)
    pid_file = state_dir / f"{name}.pid"
    if pid is None:
        return False
    if not is_running(pid) or marker not in _command_line(pid):
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_running(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if is_running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while is_running(pid):
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # Collect the exit status when the process is our own child (started in this interpreter).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    process: subprocess.Popen[bytes] | None,
    log_path: Path,
    timeout: float,
    interval: float = 0.2,
) -> float:
    """Poll `ready()` until it returns True; return the seconds waited.

    Fails fast (with the tail of the log) when the process exits, and after `timeout` seconds.
    """
    started = time.monotonic()
    while True:
        try:
            if ready():
                return time.monotonic() - started
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise ServerStartError(
                f"{what} exited with code {process.returncode} while starting; "
                f"see {log_path}:\n{_tail(log_path)}"
            )
        if time.monotonic() - started > timeout:
            raise ServerStartError(
                f"{what} did not answer within {timeout:.0f} s; see {log_path}:\n{_tail(log_path)}"
            )
        time.sleep(interval)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def run_checked(command: Sequence[str], *, what: str, timeout: float = 120.0) -> str:
    """Run a set-up command to completion; raise with its output when it fails."""
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise ServerStartError(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result.stdout
