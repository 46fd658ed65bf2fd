"""The model registry: fitted model versions, which one is promoted, and the one before it.

Layout under the registry root (by default $FRAUDWATCH_HOME/models):

    versions/<version>/   a model version as `ModelVersion.save` writes it (manifest.json + files)
    promoted              text file: the id of the version the daily scoring job uses
    previous              text file: the id of the version promoted before it (for rollback)
    history.jsonl         one JSON line per promotion, refusal or rollback, with its metrics

Versions are immutable once added. Promotion and rollback rewrite only the two pointer files,
each with an atomic rename, so a reader sees the old pointer or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fraudwatch.errors import UserError
from fraudwatch.locations.home import fraudwatch_home


def default_root() -> Path:
    return fraudwatch_home() / "models"


@dataclass(frozen=True)
class RegistryEvent:
    """One line of history.jsonl."""

    action: str  # "promote", "refuse", "rollback"
    version: str
    previous: str | None
    reason: str
    metrics: dict
    at: str


class ModelRegistry:
    """Model versions on a local (or mounted) file system, with a promoted pointer."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # ---- versions --------------------------------------------------------------------------

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def versions(self) -> list[str]:
        """Every stored version id, oldest first (ids start with a UTC timestamp)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.versions_dir.iterdir() if (p / "manifest.json").is_file()
        )

    def path(self, version: str) -> Path:
        """The folder of a stored version; a clear error when it is not stored."""
        folder = self.versions_dir / version
        if not (folder / "manifest.json").is_file():
            known = ", ".join(self.versions()) or "none"
            raise UserError(
                f"model version {version!r} is not in the registry at {self.root} "
                f"(stored: {known}); train one with the fraudwatch_retrain DAG"
            )
        return folder

    def add(self, version_dir: Path | str) -> str:
        """Copy a version folder (with its manifest.json) into the registry; return its id.

        Adding a version that is already stored is a no-op, so a retried task is harmless."""
        source = Path(version_dir)
        manifest = source / "manifest.json"
        if not manifest.is_file():
            raise UserError(f"{source} has no manifest.json; it is not a saved model version")
        version = json.loads(manifest.read_text())["version"]
        target = self.versions_dir / version
        if (target / "manifest.json").is_file():
            return version
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=self.versions_dir))
        try:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return version

    def manifest(self, version: str) -> dict:
        return json.loads((self.path(version) / "manifest.json").read_text())

    # ---- pointers ----------------------------------------------------------------------------

    def _read_pointer(self, name: str) -> str | None:
        path = self.root / name
        if not path.is_file():
            return None
        return path.read_text().strip() or None

    def _write_pointer(self, name: str, version: str | None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.root)
        with os.fdopen(fd, "w") as f:
            f.write((version or "") + "\n")
        os.replace(tmp, self.root / name)

    def promoted(self) -> str | None:
        """The id of the promoted version, or None before the first promotion."""
        return self._read_pointer("promoted")

    def previous(self) -> str | None:
        return self._read_pointer("previous")

    def promoted_path(self) -> Path:
        """The folder of the promoted version; a clear error when none is promoted."""
        version = self.promoted()
        if version is None:
            raise UserError(
                f"no model version is promoted in {self.root}; run the fraudwatch_retrain DAG "
                "or enable bootstrap_models in the pipeline config"
            )
        return self.path(version)

    def promote(self, version: str, reason: str, metrics: dict | None = None) -> None:
        """Make `version` the promoted one; the one it replaces becomes `previous`."""
        self.path(version)  # must be stored
        current = self.promoted()
        if current != version:
            # previous first: if we stop between the two writes, rollback still has a target.
            self._write_pointer("previous", current)
            self._write_pointer("promoted", version)
        self._record("promote", version, current, reason, metrics or {})

    def refuse(self, version: str, reason: str, metrics: dict | None = None) -> None:
        """Record that `version` was evaluated and not promoted (pointers unchanged)."""
        self._record("refuse", version, self.promoted(), reason, metrics or {})

    def rollback(self, reason: str = "manual rollback") -> str:
        """Swap `promoted` and `previous`; return the version now promoted."""
        current, previous = self.promoted(), self.previous()
        if previous is None:
            raise UserError(
                f"nothing to roll back to in {self.root}: no previous version is recorded"
            )
        self.path(previous)
        self._write_pointer("promoted", previous)
        self._write_pointer("previous", current)
        self._record("rollback", previous, current, reason, {})
        return previous

    # ---- history -----------------------------------------------------------------------------

    def _record(
        self, action: str, version: str, previous: str | None, reason: str, metrics: dict
    ) -> None:
        event = {
            "action": action,
            "version": version,
            "previous": previous,
            "reason": reason,
            "metrics": metrics,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "history.jsonl").open("a") as f:
            f.write(json.dumps(event, sort_keys=True) + "\n")

    def history(self) -> list[RegistryEvent]:
        path = self.root / "history.jsonl"
        if not path.is_file():
            return []
        return [RegistryEvent(**json.loads(line)) for line in path.read_text().splitlines() if line]
