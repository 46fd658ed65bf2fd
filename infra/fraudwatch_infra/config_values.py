"""Typed, validated reads of the stack configuration: each value read from one `fraudwatch:`
object, and every error a one-line ConfigError that names the full dotted key and the
`pulumi config set` command that fixes it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE = "fraudwatch"

QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
SPARK_MEMORY = re.compile(r"^[0-9]+[mgk]$")
# A Kubernetes namespace name (RFC 1123 label).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
K8S_VERSION = re.compile(r"^1\.[0-9]{2}$")


class ConfigError(ValueError):
    """A stack configuration value is missing or wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class Size:
    """CPU and memory for one container: used as both request and limit (Guaranteed QoS)."""

    cpu: str
    memory: str

    def resources(self) -> dict[str, dict[str, str]]:
        """A Kubernetes ResourceRequirements object."""
        quantities = {"cpu": self.cpu, "memory": self.memory}
        return {"requests": dict(quantities), "limits": dict(quantities)}


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


def fix(path: str, example: str) -> str:
    """The command that sets `path` (a dotted key under `fraudwatch:`) to `example`."""
    return f"Fix: pulumi config set --path '{NAMESPACE}:{path}' {example}"


class ConfigSection:
    """Typed reads from one config object, each error naming its full dotted key."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{NAMESPACE}:{path} must be an object, got {type(raw).__name__}. "
                f"See infra/Pulumi.dev.yaml for its shape."
            )
        self.raw = raw
        self.path = path

    def key(self, key: str) -> str:
        """The full dotted key of `key` in this object."""
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, example: str) -> Any:
        if key not in self.raw or self.raw[key] is None:
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} is not set. {fix(self.key(key), example)}"
            )
        return self.raw[key]

    def section(self, key: str) -> ConfigSection:
        if key not in self.raw:
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} is not set. Copy the `{key}` block from "
                f"infra/Pulumi.dev.yaml into the stack file."
            )
        return ConfigSection(self.raw[key], self.key(key))

    def integer(self, key: str, example: int, minimum: int = 1) -> int:
        value = self._get(key, str(example))
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} must be an integer >= {minimum}, got {value!r}. "
                f"{fix(self.key(key), str(example))}"
            )
        return value

    def odd(self, key: str, example: int) -> int:
        """An integer that must be odd so a majority of the members survives a failure."""
        value = self.integer(key, example)
        if value % 2 == 0:
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} must be odd so a majority survives a failure, "
                f"got {value}. {fix(self.key(key), str(value + 1))}"
            )
        return value

    def boolean(self, key: str, example: bool = False) -> bool:
        value = self._get(key, str(example).lower())
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} must be true or false, got {value!r}. "
                f"{fix(self.key(key), str(example).lower())}"
            )
        return value

    def string(self, key: str, example: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self._get(key, example)
        if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} has the wrong form: {value!r}. "
                f"{fix(self.key(key), example)}"
            )
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} must be a string, got {value!r}. "
                f"{fix(self.key(key), 'VALUE')}"
            )
        return value

    def quantity(self, key: str, example: str) -> str:
        return self.string(key, example, QUANTITY)

    def cidrs(self, key: str, example: str) -> tuple[str, ...]:
        value = self._get(key, f"'[\"{example}\"]'")
        if not isinstance(value, list) or not value:
            raise ConfigError(
                f"{NAMESPACE}:{self.key(key)} must be a non-empty list of CIDRs, got {value!r}. "
                f"{fix(self.key(key) + '[0]', example)}"
            )
        for cidr in value:
            try:
                ipaddress.ip_network(str(cidr), strict=True)
            except ValueError as err:
                raise ConfigError(
                    f"{NAMESPACE}:{self.key(key)} holds {cidr!r}, which is not a CIDR ({err}). "
                    f"{fix(self.key(key) + '[0]', example)}"
                ) from None
        return tuple(str(c) for c in value)

    def size(self, key: str, cpu: str, memory: str) -> Size:
        sub = self.section(key)
        return Size(cpu=sub.quantity("cpu", cpu), memory=sub.quantity("memory", memory))

    def image(self, key: str) -> Image:
        sub = self.section(key)
        repository = sub.string("repository", "ghcr.io/fraudwatch/fraudwatch")
        tag = sub.string("tag", "0.1.0")
        if tag == "latest" or ":" in repository.rsplit("/", 1)[-1]:
            raise ConfigError(
                f"{NAMESPACE}:{sub.key('tag')} must pin a release, not {tag!r}. "
                f"{fix(sub.key('tag'), '0.1.0')}"
            )
        return Image(repository, tag)
