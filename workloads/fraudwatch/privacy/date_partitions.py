"""Date partitions on local disk and on Ceph (S3): finding the old ones, removing each whole.

Two layouts hold one folder per day:

- the pipelines' data root (pipelines/config.py): `ROOT/raw/DAY`, `ROOT/features/DAY`,
  `ROOT/scored/DAY`, `ROOT/reports/DAY`, and under the pipeline home the Tableau extracts
  `HOME/tableau/DAY` and the retraining folders `HOME/retrain/DAY` (copies of a window of raw
  events, the candidate's scores);
- a raw folder written by `fraudwatch generate` or `fraudwatch land`:
  `RAW/transactions/date=DAY`, `RAW/logins/date=DAY`, `RAW/api_calls/date=DAY` and the landing
  metadata `RAW/_landing/date=DAY` (`RAW/users` is not partitioned by date and is left alone).

Removal is whole or not at all as a reader sees it. Locally the folder is first renamed into
`STORE/_retention-trash/` (one atomic rename: readers never list that folder) and then deleted;
a deletion cut short leaves the folder in the trash, emptied by the next run. On S3, which has
no rename, the partition's manifests (`manifest.json`, `run.json`, which mark a complete day)
are deleted first, then every other object: a run cut short leaves a day without a manifest,
which every reader treats as incomplete, and the next run removes the rest.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.fs as pafs

from fraudwatch.errors import UserError
from fraudwatch.locations import storage

log = logging.getLogger("fraudwatch.privacy.retain")

#: Where local partitions go on their way out (underscore: no reader lists it).
TRASH = "_retention-trash"
#: Folder names that are a day: `2026-03-02` (data root) or `date=2026-03-02` (raw layout).
_DAY_NAME = re.compile(r"^(?:date=)?(\d{4}-\d{2}-\d{2})$")
#: The raw layout's tables partitioned by date; `_landing` first: its manifest marks the day.
RAW_TABLES = ("_landing", "transactions", "logins", "api_calls")
#: Data-root folder → data class.
DATA_ROOT_FOLDERS = {
    "raw": "raw_events",
    "features": "raw_events",
    "scored": "scored_results",
    "reports": "alerts_and_interventions",
}

Location = str | Path


@dataclass(frozen=True)
class Partition:
    """One day's folder of one table or step."""

    data_class: str
    location: Location  # a Path, or an s3:// string
    day: date
    store_root: Location  # where the trash is (local), or the data set's root (S3)

    @property
    def on_s3(self) -> bool:
        return storage.is_s3(self.location)

    @property
    def store(self) -> str:
        return "Ceph S3" if self.on_s3 else "local disk"


def day_of(name: str) -> date | None:
    """The day a folder name stands for, or None when it is not a day's folder."""
    match = _DAY_NAME.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _join(base: Location, *parts: str) -> Location:
    if storage.is_s3(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return Path(base).joinpath(*parts)


def _subfolders(location: Location) -> list[str]:
    if not storage.is_s3(location):
        folder = Path(location)
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    fs = storage.s3_filesystem()
    selector = pafs.FileSelector(storage.s3_path(str(location)), allow_not_found=True)
    try:
        infos = fs.get_file_info(selector)
    except OSError as exc:
        raise UserError(f"cannot list {location}: {str(exc).splitlines()[0]}") from None
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def _days_below(folder: Location, data_class: str, store_root: Location) -> Iterable[Partition]:
    for name in _subfolders(folder):
        day = day_of(name)
        if day is not None:
            yield Partition(data_class, _join(folder, name), day, store_root)


def data_root_partitions(data_root: Location) -> list[Partition]:
    """Every day's folder under a pipelines data root (local or s3://)."""
    found: list[Partition] = []
    for folder, data_class in DATA_ROOT_FOLDERS.items():
        found += _days_below(_join(data_root, folder), data_class, data_root)
    return found


#: Pipeline-home folder → data class.
PIPELINE_HOME_FOLDERS = {"tableau": "scored_results", "retrain": "raw_events"}


def pipeline_home_partitions(pipeline_home: Path) -> list[Partition]:
    """The Tableau extracts the daily publish writes and the weekly retraining's folders,
    one per day."""
    found: list[Partition] = []
    for folder, data_class in PIPELINE_HOME_FOLDERS.items():
        found += _days_below(pipeline_home / folder, data_class, pipeline_home)
    return found


def raw_layout_partitions(raw: Location) -> list[Partition]:
    """Every `date=DAY` folder of the raw layout's tables (the landing metadata first)."""
    found: list[Partition] = []
    for table in RAW_TABLES:
        found += _days_below(_join(raw, table), "raw_events", raw)
    return found


def older_than(partitions: Iterable[Partition], cutoffs: dict[str, date]) -> list[Partition]:
    """The partitions whose day lies wholly before their class's cut-off, oldest first (and,
    within a day, in the order found: a raw day's landing manifest goes before its tables)."""
    old = [p for p in partitions if p.day < cutoffs[p.data_class]]
    return sorted(old, key=lambda p: p.day)  # stable: keeps the found order within a day


def remove(partition: Partition) -> None:
    """Remove one partition whole (see the module's docstring)."""
    if partition.on_s3:
        _remove_s3(str(partition.location))
    else:
        _remove_local(Path(partition.location), Path(partition.store_root))
    log.info(
        "removed %s partition %s (day %s)",
        partition.data_class,
        partition.location,
        partition.day,
    )


def _remove_local(folder: Path, store_root: Path) -> None:
    trash = store_root / TRASH
    trash.mkdir(exist_ok=True)
    held = trash / f"{folder.parent.name}-{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        folder.rename(held)  # the one step readers can see: the partition is gone whole
    except OSError as exc:
        raise UserError(
            f"cannot remove {folder}: {exc.strerror}; check the permissions of {folder.parent}"
        ) from None
    shutil.rmtree(held, ignore_errors=True)
    if held.exists():
        log.warning(
            "%s is gone from readers; its files stay in %s until the next run", folder, held
        )


def _remove_s3(location: str) -> None:
    fs, path = storage.s3_filesystem(), storage.s3_path(location)
    try:
        for manifest in storage.MANIFESTS:
            if fs.get_file_info(f"{path}/{manifest}").type == pafs.FileType.File:
                fs.delete_file(f"{path}/{manifest}")  # the day reads as incomplete from here
        fs.delete_dir(path)
    except OSError as exc:
        raise UserError(
            f"cannot remove {location}: {str(exc).splitlines()[0]}; the day has no manifest "
            "now (readers skip it) and the next run removes the rest"
        ) from None


def leftover_trash(store_roots: Iterable[Location]) -> list[Path]:
    """Local partitions a run cut short left in the trash (never read; removed next run)."""
    held: list[Path] = []
    for root in store_roots:
        trash = Path(root) / TRASH if not storage.is_s3(root) else None
        if trash is not None and trash.is_dir():
            held += sorted(trash.iterdir())
    return held


def empty_trash(items: Iterable[Path]) -> None:
    for item in items:
        shutil.rmtree(item, ignore_errors=True)
        log.info("removed %s, left in the trash by an earlier run", item)
