"""Dispositions files and the labels they give (docs/feedback.md).

A dispositions file holds analysts' verdicts in the shape the intervention service's
`GET /v1/dispositions` returns them: one record per verdict with `user_id`, `label` (fraud,
legitimate or unsure), `ts` (when the verdict was recorded, UTC) and optionally `tx_id`,
`reason`, `model_version`, `actor`. Accepted files: Parquet (`.parquet`), JSON Lines
(`.jsonl`, one disposition per line) or the JSON answer of `GET /v1/dispositions`
(`.json` with an `items` list, or a plain list).

Labels are per account: the latest verdict on a user counts (a later `unsure` withdraws an
earlier verdict); `fraud` is 1, `legitimate` 0. The time split (`split_by_time`) is how the
retraining keeps future verdicts out of training: only verdicts recorded before the
candidate's training cut-off may shape it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fraudwatch.errors import UserError
from fraudwatch.locations.atomic import atomic_file

#: The verdicts, as the intervention service names them (intervention/dispositions.py).
LABELS = ("fraud", "legitimate", "unsure")
SUFFIXES = (".parquet", ".jsonl", ".json")


@dataclass(frozen=True)
class Disposition:
    user_id: int
    label: str
    ts: datetime  # when the verdict was recorded (UTC)
    tx_id: str | None = None
    reason: str = ""
    model_version: str | None = None
    actor: str | None = None

    def as_json(self) -> dict:
        return {**asdict(self), "ts": self.ts.isoformat()}


SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("tx_id", pa.string()),
        ("label", pa.string()),
        ("reason", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("model_version", pa.string()),
        ("actor", pa.string()),
    ]
)


def _time(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UserError(
                f"{where}: ts {value!r} is not an ISO 8601 time; write e.g. 2026-03-09T10:00:00Z"
            ) from None
    else:
        raise UserError(f"{where}: ts is missing or not a time ({value!r}); add an ISO 8601 ts")
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)


def _disposition(record: dict, where: str) -> Disposition:
    if not isinstance(record, dict):
        raise UserError(f"{where}: a disposition must be an object, got {record!r}")
    missing = [k for k in ("user_id", "label", "ts") if record.get(k) is None]
    if missing:
        raise UserError(
            f"{where}: disposition without {', '.join(missing)}; every disposition needs "
            "user_id, label and ts (the fields GET /v1/dispositions returns)"
        )
    label = record["label"]
    if label not in LABELS:
        raise UserError(f"{where}: label {label!r} is unknown; use one of {', '.join(LABELS)}")
    try:
        user_id = int(record["user_id"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: user_id {record['user_id']!r} is not an integer") from None
    tx_id = record.get("tx_id")
    return Disposition(
        user_id=user_id,
        label=label,
        ts=_time(record["ts"], where),
        tx_id=None if tx_id is None else str(tx_id),
        reason=str(record.get("reason") or ""),
        model_version=record.get("model_version"),
        actor=record.get("actor"),
    )


def read_dispositions(path: Path | str) -> list[Disposition]:
    """Every disposition in a Parquet, JSON Lines or JSON file, in file order."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise UserError(
            f"dispositions file {path}: unknown format {path.suffix!r}; use one of "
            f"{', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise UserError(
            f"dispositions file {path} does not exist; write one with `fraudwatch feedback "
            "simulate` or export GET /v1/dispositions, or fix the path"
        )
    if path.suffix == ".parquet":
        records = pq.read_table(path).to_pylist()
    elif path.suffix == ".jsonl":
        records = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path} line {n}: not JSON ({exc.msg})") from None
    else:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not JSON ({exc.msg})") from None
        records = data.get("items") if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise UserError(f"{path}: expected a list of dispositions or an object with `items`")
    return [_disposition(r, f"{path} record {i + 1}") for i, r in enumerate(records)]


def write_dispositions(path: Path | str, dispositions: Iterable[Disposition]) -> Path:
    """Write dispositions as Parquet or JSON Lines (by the file's suffix), whole or not at all."""
    path = Path(path)
    items = list(dispositions)
    if path.suffix not in (".parquet", ".jsonl"):
        raise UserError(f"--out {path}: name a .parquet or .jsonl file")
    with atomic_file(path) as tmp:
        if path.suffix == ".parquet":
            table = pa.Table.from_pylist([asdict(d) for d in items], schema=SCHEMA)
            pq.write_table(table, tmp, compression="zstd")
        else:
            tmp.write_text("".join(json.dumps(d.as_json()) + "\n" for d in items))
    return path


def split_by_time(
    dispositions: Iterable[Disposition], cutoff: datetime
) -> tuple[list[Disposition], list[Disposition]]:
    """(recorded before `cutoff`, recorded at or after it). Training and weight learning see
    only the first part; the second is for evaluation."""
    cutoff = _time(cutoff, "cut-off")
    before: list[Disposition] = []
    after: list[Disposition] = []
    for d in dispositions:
        (before if d.ts < cutoff else after).append(d)
    return before, after


def user_labels(dispositions: Iterable[Disposition]) -> dict[int, int]:
    """user_id → 1 (fraud) or 0 (legitimate) from each user's latest verdict; a user whose
    latest verdict is `unsure` has no label."""
    latest: dict[int, Disposition] = {}
    for d in sorted(dispositions, key=lambda d: d.ts):
        latest[d.user_id] = d
    return {u: int(d.label == "fraud") for u, d in latest.items() if d.label != "unsure"}
