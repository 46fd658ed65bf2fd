"""What the product (workloads/fraudwatch) reads, taken from its source text: the infra tier
never imports the product (it runs in its own virtualenv without it).

- `product_env_names()`: every FRAUDWATCH_* name written anywhere in the product's Python
  source. A variable the chart sets that is not in it is read by nothing.
- `product_topics()`: DEFAULT_TOPIC_PREFIX, TOPICS and DEAD_LETTER of
  workloads/fraudwatch/streaming/schemas.py, parsed with `ast` (literals only).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCT_DIR = REPO_ROOT / "workloads" / "fraudwatch"
SCHEMAS = PRODUCT_DIR / "streaming" / "schemas.py"
ENV_NAME = re.compile(r"FRAUDWATCH_[A-Z0-9_]+")


@cache
def product_env_names() -> frozenset[str]:
    """Every FRAUDWATCH_* name in workloads/fraudwatch/**/*.py."""
    names: set[str] = set()
    for path in sorted(PRODUCT_DIR.rglob("*.py")):
        names.update(ENV_NAME.findall(path.read_text(encoding="utf-8")))
    return frozenset(names)


@dataclass(frozen=True)
class ProductTopics:
    prefix: str
    events: tuple[str, ...]
    dead_letter: str

    @property
    def event_topics(self) -> set[str]:
        return {f"{self.prefix}{name}" for name in self.events}

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.prefix}{self.dead_letter}"

    @property
    def all(self) -> set[str]:
        return self.event_topics | {self.dead_letter_topic}


def _module_constants(path: Path, names: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names:
                found[target.id] = ast.literal_eval(value)
    missing = names - set(found)
    assert not missing, f"{path}: no literal assignment of {sorted(missing)}"
    return found


@cache
def product_topics() -> ProductTopics:
    """The topic names `fraudwatch stream` reads and writes, with the default prefix."""
    found = _module_constants(SCHEMAS, {"DEFAULT_TOPIC_PREFIX", "TOPICS", "DEAD_LETTER"})
    return ProductTopics(
        prefix=found["DEFAULT_TOPIC_PREFIX"],
        events=tuple(found["TOPICS"]),  # a dict: topic name -> generator table
        dead_letter=found["DEAD_LETTER"],
    )


def env_names(value: Any) -> Iterator[str]:
    """Names of every EnvVar anywhere in a manifest (containers, init containers, the Spark
    Operator's driver/executor `env`)."""
    if isinstance(value, dict):
        env = value.get("env")
        if isinstance(env, list):
            yield from (e["name"] for e in env if isinstance(e, dict) and "name" in e)
        for child in value.values():
            yield from env_names(child)
    elif isinstance(value, list):
        for child in value:
            yield from env_names(child)


def unread_fraudwatch_variables(objects: list[dict[str, Any]]) -> set[str]:
    """FRAUDWATCH_* variables the manifests set that the product never reads."""
    return {
        name
        for name in env_names(objects)
        if name.startswith("FRAUDWATCH_") and name not in product_env_names()
    }
