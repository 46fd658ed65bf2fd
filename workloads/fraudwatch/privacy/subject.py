"""Data-subject requests: everything held about one customer, exported or erased
(`fraudwatch privacy export` / `fraudwatch privacy erase`, docs/privacy.md).

Where a customer's data is, and how erasure removes it:

| store | what | export | erase |
|---|---|---|---|
| raw folders (local, Ceph S3) | `users`, `transactions`, `logins`, `api_calls` rows with their `user_id` | the rows, file by file | every affected partition folder rewritten whole without them (local: staged and renamed; S3: staged, swapped, manifests last) |
| scored folders | `users.parquet`, `transactions/*.parquet` rows | the rows | a file directly in the folder is replaced by one rename (local) or one PUT (S3); a partition folder as above. The intervention service's serving index is keyed by the files' sizes and times, so it is rebuilt from the rewritten folder |
| Elasticsearch | `fraudwatch-*` documents with the `user_id`, audit copies with `subject_kind` account and the id | the documents | `_delete_by_query` (refreshed, so a search right after finds nothing) |
| state store | profile, dispositions, decisions, approvals, account flags, audit entries | all of them | profile, dispositions, decisions, approvals deleted; the audit entries about the account keep their place in the chain but lose the id, reason, detail and alert id (their hash covers keyed commitments of those, and the customer's key is deleted), the account flags they set go with them (docs/privacy.md) |

Nothing is erased before every store has been read: a store that does not answer fails the
request before anything was changed.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fraudwatch.errors import UserError
from fraudwatch.intervention.audit import CUSTOMER_KINDS
from fraudwatch.locations import atomic, storage
from fraudwatch.locations.atomic import atomic_file

log = logging.getLogger("fraudwatch.privacy.subject")

Location = str | Path

#: The Elasticsearch indices fraudwatch writes (rollover aliases' indices, streaming ones).
ES_INDICES = "fraudwatch-*"
#: Folders of a scored folder that hold no customer rows (fitted models).
_NOT_ROWS = ("models",)


def parse_user_id(value: str) -> int:
    """A customer id as every store keeps it (an integer)."""
    try:
        user_id = int(value.strip())
    except ValueError:
        raise UserError(
            f"--user-id {value!r} is not a customer id; give the integer user_id of the "
            "raw and scored data (e.g. --user-id 4711)"
        ) from None
    if user_id < 0:
        raise UserError(f"--user-id {value!r} is negative; customer ids are 0 or more")
    return user_id


@dataclass
class SubjectStores:
    """Where to look for one customer; empty entries are stores that are not configured."""

    raw_dirs: list[Location] = field(default_factory=list)
    scored_dirs: list[Location] = field(default_factory=list)
    elasticsearch_url: str = ""
    state_url: str = ""

    def names(self) -> list[str]:
        named = [f"raw {r}" for r in self.raw_dirs] + [f"scored {s}" for s in self.scored_dirs]
        if self.elasticsearch_url:
            named.append(f"Elasticsearch {self.elasticsearch_url}")
        if self.state_url:
            named.append("state store")
        return named


# --- Parquet folders (local or S3) ---------------------------------------------------------
def _relative(root: Location, file: str) -> PurePosixPath:
    base = storage.s3_path(str(root)) if storage.is_s3(root) else str(Path(root).absolute())
    absolute = file if storage.is_s3(root) else str(Path(file).absolute())
    return PurePosixPath(absolute).relative_to(base)


def _location(root: Location, relative: PurePosixPath | str) -> Location:
    if storage.is_s3(root):
        return f"{str(root).rstrip('/')}/{relative}"
    return Path(root) / relative


def row_files(root: Location) -> list[PurePosixPath]:
    """The Parquet files of a raw or scored folder that hold customer rows, relative to it
    (staging, trash and partial folders, `_landing` metadata and fitted models left out)."""
    if not storage.is_s3(root) and not Path(root).is_dir():
        raise UserError(f"{root} is not a folder; give a raw or scored folder (--raw/--scored)")
    try:
        files = storage.list_parquet(root)
    except OSError as exc:
        raise UserError(f"cannot list {root}: {str(exc).splitlines()[0]}") from None
    found = []
    for file in files:
        relative = _relative(root, file)
        if any(part.startswith(("_", ".")) for part in relative.parts):
            continue
        if relative.parts[0] in _NOT_ROWS:
            continue
        found.append(relative)
    return found


def _matches(table: pa.Table, user_id: int) -> pa.Array | None:
    """A mask of the rows of the customer, or None when the table has no user_id."""
    if "user_id" not in table.column_names:
        return None
    column = table.column("user_id")
    if pa.types.is_integer(column.type):
        mask = pc.equal(column, pa.scalar(user_id, column.type))
    else:
        mask = pc.equal(pc.cast(column, pa.string()), str(user_id))
    return pc.fill_null(mask, False)


@dataclass(frozen=True)
class FileRows:
    """The customer's rows in one Parquet file."""

    root: Location
    relative: PurePosixPath
    rows: pa.Table

    @property
    def location(self) -> Location:
        return _location(self.root, self.relative)


def rows_in(root: Location, user_id: int) -> list[FileRows]:
    """The customer's rows in every file of a raw or scored folder (files without any: left
    out)."""
    found = []
    for relative in row_files(root):
        location = _location(root, relative)
        try:
            table = storage.read_table(location)
        except (OSError, pa.ArrowInvalid) as exc:
            raise UserError(f"cannot read {location}: {str(exc).splitlines()[0]}") from None
        mask = _matches(table, user_id)
        if mask is None:
            continue
        rows = table.filter(mask)
        if rows.num_rows:
            found.append(FileRows(root, relative, rows))
    return found


def _write_without(source: Location, user_id: int, target: Path) -> int:
    table = storage.read_table(source)
    mask = _matches(table, user_id)
    assert mask is not None
    kept = table.filter(pc.invert(mask))
    pq.write_table(kept, target)
    return table.num_rows - kept.num_rows


def _copy_folder(source: Location, target: Path) -> None:
    """Every file below `source` (local or S3) into the local folder `target`."""
    if storage.is_s3(source):
        pafs.copy_files(
            storage.s3_path(str(source)),
            str(target),
            source_filesystem=storage.s3_filesystem(),
            destination_filesystem=pafs.LocalFileSystem(),
        )
    else:
        shutil.copytree(source, target, dirs_exist_ok=True)


def erase_rows(root: Location, affected: list[FileRows], user_id: int) -> int:
    """Rewrite every affected file without the customer's rows; how many rows went.

    A file directly in the folder (a scored folder's `users.parquet`) is replaced on its own:
    one rename locally, one PUT on S3, both atomic. A file inside a partition folder
    (`transactions/date=DAY/`) takes its whole folder with it: the folder is staged with
    every file rewritten and replaces the old one whole (atomic.written_whole), so a reader
    sees the partition before or after, never a mix."""
    removed = 0
    by_folder: dict[PurePosixPath, list[FileRows]] = {}
    for item in affected:
        by_folder.setdefault(item.relative.parent, []).append(item)
    for folder, items in sorted(by_folder.items()):
        if folder == PurePosixPath("."):
            for item in items:
                removed += _replace_file(item.location, user_id)
            continue
        parent = _location(root, folder.parent) if folder.parent != PurePosixPath(".") else root
        source = _location(root, folder)
        manifests = [m for m in storage.MANIFESTS if storage.is_file(_location(source, m))]
        with atomic.written_whole(parent, folder.name, manifests) as staged:
            _copy_folder(source, staged)
            for item in items:
                target = staged / item.relative.name
                removed += _write_without(target, user_id, target.with_suffix(".rewrite"))
                target.with_suffix(".rewrite").replace(target)
        log.info("rewrote %s without user %d", _location(root, folder), user_id)
    return removed


def _replace_file(location: Location, user_id: int) -> int:
    if not storage.is_s3(location):
        with atomic_file(Path(location)) as tmp:
            removed = _write_without(location, user_id, tmp)
        log.info("rewrote %s without user %d", location, user_id)
        return removed
    holder = Path(tempfile.mkdtemp(prefix="fraudwatch-erase-"))
    try:
        local = holder / "file.parquet"
        removed = _write_without(location, user_id, local)
        fs = storage.s3_filesystem()
        with fs.open_output_stream(storage.s3_path(str(location))) as out:
            out.write(local.read_bytes())  # one PUT: the old object or the new one
    except OSError as exc:
        raise UserError(f"cannot rewrite {location}: {str(exc).splitlines()[0]}") from None
    finally:
        shutil.rmtree(holder, ignore_errors=True)
    log.info("rewrote %s without user %d", location, user_id)
    return removed


# --- Elasticsearch -------------------------------------------------------------------------
def es_query(user_id: int) -> dict[str, Any]:
    """The customer's documents: scored users and transactions (`user_id`), audit copies
    about the account or a view of it (`subject_kind` account/account_view, `subject_id`)."""
    return {
        "bool": {
            "should": [
                {"term": {"user_id": str(user_id)}},
                {
                    "bool": {
                        "filter": [
                            {"terms": {"subject_kind": list(AUDIT_KINDS)}},
                            {"term": {"subject_id": str(user_id)}},
                        ]
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def _es(url: str) -> Any:
    from fraudwatch.elasticsearch.client import connect

    return connect(url)


def _es_call(url: str, call: Callable[[], Any]) -> Any:
    from fraudwatch.elasticsearch.client import ElasticsearchRefused, ElasticsearchUnreachable

    try:
        return call()
    except ElasticsearchUnreachable as exc:
        raise UserError(
            f"Elasticsearch at {url} did not answer ({exc}); check --es-url / "
            "FRAUDWATCH_ELASTICSEARCH_URL and that the cluster is up"
        ) from None
    except ElasticsearchRefused as exc:
        raise UserError(f"Elasticsearch at {url} refused the request: {exc}") from None


def es_documents(url: str, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """The customer's documents, by index (scrolled: however many there are)."""
    client = _es(url)
    found: dict[str, list[dict[str, Any]]] = {}

    def scroll() -> None:
        answer = client.request(
            "POST",
            f"/{ES_INDICES}/_search",
            {"size": 1000, "query": es_query(user_id), "sort": ["_doc"]},
            params={"scroll": "1m"},
        )
        while True:
            hits = answer["hits"]["hits"]
            for hit in hits:
                found.setdefault(hit["_index"], []).append({"_id": hit["_id"], **hit["_source"]})
            if not hits or not answer.get("_scroll_id"):
                break
            answer = client.request(
                "POST", "/_search/scroll", {"scroll": "1m", "scroll_id": answer["_scroll_id"]}
            )
        if answer.get("_scroll_id"):
            client.request("DELETE", "/_search/scroll", {"scroll_id": answer["_scroll_id"]})

    _es_call(url, scroll)
    return found


def es_erase(url: str, user_id: int) -> int:
    """Delete the customer's documents from every fraudwatch index; how many went."""
    client = _es(url)
    answer = _es_call(
        url,
        lambda: client.request(
            "POST",
            f"/{ES_INDICES}/_delete_by_query",
            {"query": es_query(user_id)},
            params={"refresh": "true", "conflicts": "proceed"},
        ),
    )
    failures = answer.get("failures") or []
    if failures:
        raise UserError(
            f"Elasticsearch at {url} could not delete every document of user {user_id}: "
            f"{failures[0]}; run the erase again"
        )
    deleted = int(answer.get("deleted", 0))
    log.info("deleted %d Elasticsearch document(s) of user %d", deleted, user_id)
    return deleted


# --- the state store -----------------------------------------------------------------------
APPROVAL_STATUSES = ("pending", "approved", "rejected")
#: Audit entries about a customer: what was done to the account, and who looked at it.
AUDIT_KINDS = CUSTOMER_KINDS


def audit_entries_of(store: Any, user_id: int) -> list[dict[str, Any]]:
    """The audit entries about the account or a view of it, in seq order."""
    uid = str(user_id)
    return sorted(
        (e for kind in AUDIT_KINDS for e in store.audit_entries(subject_kind=kind, subject_id=uid)),
        key=lambda e: e["seq"],
    )


def _about(approval: dict[str, Any], user_id: int) -> bool:
    return approval.get("subject_kind") == "account" and str(approval.get("subject_id")) == str(
        user_id
    )


def state_records(store: Any, user_id: int) -> dict[str, Any]:
    """What the state store holds about the customer, through the store's own reads."""
    uid = str(user_id)
    dispositions, _ = store.dispositions(user_id=user_id)
    decisions, _ = store.decisions(user_id=user_id)
    approvals = [
        a
        for status in APPROVAL_STATUSES
        for a in store.list_approvals(status)
        if _about(a, user_id)
    ]
    return {
        "profile": store.get_profile(uid),
        "account_state": store.get_state("account", uid),
        "dispositions": dispositions,
        "decisions": decisions,
        "approvals": approvals,
        "audit": audit_entries_of(store, user_id),
    }


@dataclass(frozen=True)
class Hold:
    """Why a customer may not be erased now."""

    reasons: list[str]


def legal_hold(store: Any, user_id: int) -> Hold | None:
    """An open fraud case: the account is locked or under step-up, or an action on it waits
    for approval."""
    uid = str(user_id)
    reasons = []
    state = store.get_state("account", uid)
    if state.get("locked"):
        reasons.append("the account is locked")
    if state.get("step_up"):
        reasons.append("the account is under step-up")
    for approval in store.list_approvals("pending"):
        if _about(approval, user_id):
            reasons.append(f"approval {approval['id']} ({approval.get('action')}) is pending")
    return Hold(reasons) if reasons else None


def state_erase(url: str, user_id: int) -> dict[str, int]:
    """Delete the customer's profile, dispositions, decisions and approvals (the store has no
    delete for these: one statement per collection in its own database, as retention does);
    how many of each went."""
    uid = str(user_id)
    removed: dict[str, int] = {}
    if url.startswith("sqlite:///"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            con.execute("BEGIN IMMEDIATE")
            statements = {
                "profiles": ("DELETE FROM profiles WHERE user_id = ?", (uid,)),
                "dispositions": ("DELETE FROM dispositions WHERE user_id = ?", (user_id,)),
                "decisions": ("DELETE FROM decisions WHERE user_id = ?", (user_id,)),
                "approvals": (
                    "DELETE FROM approvals WHERE json_extract(item, '$.subject_kind') = "
                    "'account' AND CAST(json_extract(item, '$.subject_id') AS TEXT) = ?",
                    (uid,),
                ),
            }
            for table, (sql, args) in statements.items():
                removed[table] = int(con.execute(sql, args).rowcount) if table in tables else 0
            con.execute("COMMIT")
        finally:
            con.close()
    else:
        from pymongo import MongoClient

        client: Any = MongoClient(url, serverSelectionTimeoutMS=5000)
        try:
            db = client.get_default_database(default="fraudwatch")
            filters = {
                "profiles": {"_id": uid},
                "dispositions": {"user_id": user_id},
                "decisions": {"user_id": user_id},
                "approvals": {"subject_kind": "account", "subject_id": {"$in": [uid, user_id]}},
            }
            for name, filter_ in filters.items():
                removed[name] = int(db[name].delete_many(filter_).deleted_count)
        except Exception as exc:  # pymongo's errors: unreachable, refused
            raise UserError(f"the state store did not answer ({exc})") from None
        finally:
            client.close()
    log.info(
        "deleted from the state store for user %d: %s",
        user_id,
        ", ".join(f"{n} {k}" for k, n in removed.items()),
    )
    return removed


# --- export --------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def gather(
    stores: SubjectStores, user_id: int, store: Any, on_store: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Everything held about the customer: one section per store (read only)."""
    done = on_store or (lambda _: None)
    sections: dict[str, Any] = {}
    for kind, roots in (("raw", stores.raw_dirs), ("scored", stores.scored_dirs)):
        section: dict[str, Any] = {}
        for root in roots:
            files = {str(f.relative): f.rows.to_pylist() for f in rows_in(root, user_id)}
            section[str(root)] = files
            done(f"{kind} {root}")
        sections[kind] = section
    if stores.elasticsearch_url:
        sections["elasticsearch"] = es_documents(stores.elasticsearch_url, user_id)
        done("Elasticsearch")
    if store is not None:
        sections["state_store"] = state_records(store, user_id)
        done("state store")
    return {
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stores": sections,
    }


def write_export(document: dict[str, Any], out: Path) -> None:
    """The export as one JSON file, written whole."""
    if out.suffix.lower() != ".json":
        raise UserError(f"--out {out} should name a .json file (e.g. user-4711.json)")
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(document, indent=1, default=_jsonable, ensure_ascii=False))


def counts(document: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(store, where, how many records) of an export, for the summary table."""
    stores = document["stores"]
    for kind in ("raw", "scored"):
        for root, files in stores.get(kind, {}).items():
            for relative, rows in files.items():
                yield kind, f"{root}: {relative}", len(rows)
    for index, docs in stores.get("elasticsearch", {}).items():
        yield "Elasticsearch", index, len(docs)
    for name, value in stores.get("state_store", {}).items():
        if isinstance(value, list):
            yield "state store", name, len(value)
        elif value:
            yield "state store", name, 1
