"""The pipelines' data root: a local folder or an S3 prefix (Ceph radosgw) behind one interface.

Locations are `Path`s locally and `s3://BUCKET/PREFIX/...` strings on S3 (a `Path` would fold
the `//`). Reading goes through pyarrow datasets with pyarrow's own S3 client
(storage.s3_filesystem), which works offline — DuckDB's httpfs extension would be downloaded
at run time. Writing a day's folder is always staged:

- locally, the folder is written aside and renamed into place (output.atomic_directory);
- on S3, which has no rename, the finished folder is first uploaded under
  `<root>/_staging/<token>/` (the slow, fallible part: a failure there leaves the day as it
  was), then the day's manifests are deleted, the day's objects deleted and replaced by
  server-side copies of the staged ones, the manifests copied last and the staging prefix
  removed. A day whose manifest is missing is a day whose write did not finish.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fraudwatch import storage
from fraudwatch.errors import UserError
from fraudwatch.output import atomic_directory, atomic_file

Location = str | Path


def is_s3(location: Location) -> bool:
    return storage.is_s3(location)


def join(base: Location, *parts: str) -> Location:
    """`base/part/...`, a Path locally and an s3:// string on S3."""
    if is_s3(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return Path(base).joinpath(*parts)


def check_s3_settings(location: str, key: str) -> None:
    """A one-line error naming the configuration key and the missing setting, before any work."""
    try:
        storage.s3_path(location)
    except UserError:
        raise UserError(
            f"{key}: {location} is not usable; use s3://BUCKET/PREFIX (a bucket alone is not "
            "a data root)"
        ) from None
    missing = []
    if not (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")):
        missing.append("AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL)")
    missing += [v for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(v)]
    if missing:
        raise UserError(
            f"{key} is {location} but the S3 settings are missing from the worker's environment: "
            f"set {', '.join(missing)}"
        )


def _fs_and_path(location: Location):
    import pyarrow.fs as pafs

    if is_s3(location):
        return storage.s3_filesystem(), storage.s3_path(str(location))
    return pafs.LocalFileSystem(), str(Path(location).absolute())


def dataset(location: Location):
    """The Parquet files under `location` (recursively) as one pyarrow dataset, or None when
    there are none. No partitioning is inferred: `date=...` folders add no column."""
    import pyarrow.dataset as ds

    files = storage.list_parquet(location)
    if not files:
        return None
    fs, _ = _fs_and_path(location)
    if not is_s3(location):
        files = [str(Path(f).absolute()) for f in files]
    return ds.dataset(files, filesystem=fs, format="parquet")


def read_table(location: Location, columns: list[str] | None = None):
    """One Parquet file as an Arrow table."""
    import pyarrow.parquet as pq

    fs, path = _fs_and_path(location)
    return pq.read_table(path, filesystem=fs, columns=columns, partitioning=None)


def is_file(location: Location) -> bool:
    import pyarrow.fs as pafs

    if not is_s3(location):
        return Path(location).is_file()
    fs, path = _fs_and_path(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def read_text(location: Location) -> str | None:
    return storage.read_text(location)


def write_text(location: Location, text: str) -> None:
    """A small file written whole: a rename locally, a single PUT on S3 (atomic there)."""
    if not is_s3(location):
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            tmp.write_text(text)
        return
    fs, path = _fs_and_path(location)
    try:
        with fs.open_output_stream(path) as stream:
            stream.write(text.encode())
    except OSError as exc:
        raise UserError(f"cannot write {location}: {str(exc).splitlines()[0]}") from None


def subfolders(location: Location) -> list[str]:
    """Names of the folders directly below `location`, sorted (none when it does not exist)."""
    import pyarrow.fs as pafs

    if not is_s3(location):
        folder = Path(location)
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    fs, path = _fs_and_path(location)
    selector = pafs.FileSelector(path, allow_not_found=True, recursive=False)
    return sorted(
        i.base_name for i in fs.get_file_info(selector) if i.type == pafs.FileType.Directory
    )


def download(location: Location, target: Path, skip: Iterable[str] = ()) -> list[Path]:
    """Copy the Parquet files below `location` into the local folder `target` (same relative
    paths; local sources are hard-linked where possible). `skip`: top-level folders left out."""
    skipped = set(skip)
    out = []
    fs, root = _fs_and_path(location)
    base = Path(root) if is_s3(location) else Path(location)
    for name in storage.list_parquet(location):
        relative = Path(name).relative_to(base)
        if relative.parts[0] in skipped or relative.parts[0].startswith(("_", ".")):
            continue  # skipped tables; landing metadata, staging leftovers
        dest = target / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if is_s3(location):
            with fs.open_input_stream(name) as src, dest.open("wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
        else:
            try:
                os.link(name, dest)
            except OSError:
                shutil.copy2(name, dest)
        out.append(dest)
    return out


@contextmanager
def written_whole(root: Location, folder: str, manifests: Iterable[str] = ()) -> Iterator[Path]:
    """A local directory to write `root/folder` into; when the block completes it replaces
    `root/folder` whole (a rename locally; staged, swapped, manifests last on S3)."""
    if not is_s3(root):
        with atomic_directory(Path(root) / folder, overwrite=True) as tmp:
            yield tmp
        return
    holder = Path(tempfile.mkdtemp(prefix="fraudwatch-stage-"))
    try:
        staged = holder / folder
        staged.mkdir(parents=True)
        yield staged
        storage.swap_in(holder, str(root), [folder], [f"{folder}/{m}" for m in manifests])
    finally:
        shutil.rmtree(holder, ignore_errors=True)
