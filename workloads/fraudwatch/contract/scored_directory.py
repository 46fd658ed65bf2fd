"""Open a scored directory (the layout in contract/scored_output.py, docs/data-contract.md)
from a local path or an s3:// URI: the publishers, the intervention service and the feedback
loop read a run through it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fraudwatch.contract.scored_output import RUN_FILE, TRANSACTIONS_DIR, USERS_FILE
from fraudwatch.errors import UserError


@dataclass(frozen=True)
class ScoredRun:
    """One scoring run: where it is, which model version produced it and when."""

    uri: str
    model_version: str
    created_at: str  # ISO 8601, UTC
    filesystem: pafs.FileSystem
    root: str  # path inside `filesystem`

    def users(self) -> pa.Table:
        return pq.read_table(f"{self.root}/{USERS_FILE}", filesystem=self.filesystem)

    def transactions(self) -> ds.Dataset:
        return ds.dataset(
            f"{self.root}/{TRANSACTIONS_DIR}", filesystem=self.filesystem, format="parquet"
        )


def open_scored(uri: str | Path) -> ScoredRun:
    """Open the output of `fraudwatch score --out URI`; a clear error when it is not one."""
    text = str(uri)
    try:
        filesystem, root = pafs.FileSystem.from_uri(
            text if "://" in text else str(Path(text).absolute())
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(
            f"--scored {text!r} cannot be opened ({exc}); give a directory or s3:// URI"
        ) from None
    root = root.rstrip("/")
    try:
        with filesystem.open_input_stream(f"{root}/{RUN_FILE}") as stream:
            run = json.loads(stream.read())
    except (FileNotFoundError, OSError):
        raise UserError(
            f"--scored {text!r} has no run.json: it is not a scored directory; "
            "run `fraudwatch score --input RAW --out DIR` first"
        ) from None
    missing = [
        name
        for name in (USERS_FILE, TRANSACTIONS_DIR)
        if filesystem.get_file_info(f"{root}/{name}").type == pafs.FileType.NotFound
    ]
    if missing:
        raise UserError(
            f"--scored {text!r} lacks {', '.join(missing)}; re-run `fraudwatch score` into it"
        )
    version = run.get("model_version")
    if not version:
        raise UserError(f"{text}/run.json names no model_version; re-run `fraudwatch score`")
    return ScoredRun(text, str(version), str(run.get("created_at", "")), filesystem, root)
