"""`python -m tests.servers up|down|status|fetch [names...]` — the dev/test servers on 127.0.0.1.

    up      start the named servers (default: all) and wait until each answers
    down    stop them (default: all, in reverse start order), only the PIDs this state dir started
    status  print which are running, with PID and address
    fetch   download everything (jars, Spark connectors) without starting anything

State (PID files, configs, logs, data) lives in FRAUDWATCH_SERVICES_DIR, default .cache/services/.
Ports: FRAUDWATCH_<NAME>_PORT (KAFKA 9092, ELASTICSEARCH 9200, CEPH 7480, FERRETDB 27017).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import time
from pathlib import Path
from types import ModuleType

from tests.servers import SERVER_NAMES, default_state_dir, port_from_env, server_module
from tests.servers.process_control import is_running, read_pid


def _available() -> list[str]:
    # ferretdb.py lands from another change; include each server whose module exists.
    return [n for n in SERVER_NAMES if importlib.util.find_spec(f"tests.servers.{n}") is not None]


def _selected(names: list[str]) -> list[str]:
    available = _available()
    if not names:
        return available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(
            f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(available)}"
        )
    return [n for n in available if n in names]


def _port(name: str, module: ModuleType) -> int:
    default = getattr(module, "DEFAULT_PORT", None)
    if default is None:  # a module that only states its default in start()'s signature
        default = inspect.signature(module.start).parameters["port"].default
    return port_from_env(name, int(default))


def up(names: list[str], state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in _selected(names):
        module = server_module(name)
        port = _port(name, module)
        pid = read_pid(state_dir, name)
        if pid is not None and is_running(pid):
            print(f"{name}: already running, PID {pid}, {module.url(port)}")
            continue
        started = time.monotonic()
        try:
            pid = module.start(state_dir, port)
        except RuntimeError as error:  # ServerStartError, or a module's own start failure
            print(f"{name}: failed to start: {error}", file=sys.stderr)
            return 1
        took = time.monotonic() - started
        print(f"{name}: PID {pid}, {module.url(port)} (ready in {took:.1f} s)")
    return 0


def down(names: list[str], state_dir: Path) -> int:
    for name in reversed(_selected(names)):
        server_module(name).stop(state_dir)
        print(f"{name}: stopped")
    return 0


def status(names: list[str], state_dir: Path) -> int:
    for name in _selected(names):
        module = server_module(name)
        pid = read_pid(state_dir, name)
        if pid is not None and is_running(pid):
            print(f"{name}: running, PID {pid}, {module.url(_port(name, module))}")
        else:
            print(f"{name}: stopped")
    return 0


def fetch(names: list[str]) -> int:
    wanted = names or [*_available(), "spark_connectors"]
    for name in wanted:
        if name == "spark_connectors":
            from tests.servers import spark_connectors

            print(f"spark connectors: {', '.join(spark_connectors.coordinates())}")
            print(f"spark connectors: resolved into {spark_connectors.fetch()}")
            continue
        module = server_module(_selected([name])[0])
        # Kafka/Elasticsearch fetch jars; FerretDB builds its binary.
        prepare = getattr(module, "fetch_jars", None) or getattr(module, "build", None)
        if prepare is not None:
            print(f"{name}: ready in {prepare()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("up", "down", "status", "fetch"))
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(SERVER_NAMES)}")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="default: FRAUDWATCH_SERVICES_DIR"
    )
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return fetch(args.names)
    if "spark_connectors" in args.names:
        raise SystemExit("spark_connectors is not a server: use `python -m tests.servers fetch`")
    state_dir = (args.state_dir or default_state_dir()).resolve()
    commands = {"up": up, "down": down, "status": status}
    return commands[args.command](args.names, state_dir)


if __name__ == "__main__":
    sys.exit(main())
