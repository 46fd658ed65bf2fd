"""What the product (workloads/fraudwatch) reads, taken from its source text: the infra tier
never imports the product (it runs in its own virtualenv without it).

- `product_env_names()`: every FRAUDWATCH_* name in a string literal of the product's Python
  code (comments, docstrings and identifiers do not count: they read no variable). A variable
  the chart sets that is not in it is read by nothing.
- `product_topics()`: TOPICS and DEAD_LETTER of workloads/fraudwatch/streaming/schemas.py and
  DEFAULT_TOPIC_PREFIX of workloads/fraudwatch/contract/events.py, parsed with `ast` (literals
  only).
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
EVENTS = PRODUCT_DIR / "contract" / "events.py"
ENV_NAME = re.compile(r"FRAUDWATCH_[A-Z0-9_]+")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module and of its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def env_names_in_code(source: str, filename: str = "<source>") -> set[str]:
    """FRAUDWATCH_* names in the string literals (f-string parts included) of `source`; a name
    only in a comment or a docstring is not read by the code."""
    tree = ast.parse(source, filename=filename)
    docstrings = _docstrings(tree)
    return {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        for name in ENV_NAME.findall(node.value)
    }


@cache
def product_env_names() -> frozenset[str]:
    """Every FRAUDWATCH_* name in a string literal of workloads/fraudwatch/**/*.py."""
    names: set[str] = set()
    for path in sorted(PRODUCT_DIR.rglob("*.py")):
        names.update(env_names_in_code(path.read_text(encoding="utf-8"), str(path)))
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
    found = _module_constants(SCHEMAS, {"TOPICS", "DEAD_LETTER"})
    prefix = _module_constants(EVENTS, {"DEFAULT_TOPIC_PREFIX"})["DEFAULT_TOPIC_PREFIX"]
    return ProductTopics(
        prefix=prefix,
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
