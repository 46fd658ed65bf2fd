"""Where data lives: a local directory or an S3 prefix (Ceph radosgw in the cluster setup),
behind one interface. Writing it whole is atomic.py.

Locations are `Path`s locally and `s3://BUCKET/PREFIX/...` strings on S3 (a `Path` would fold
the `//`). S3 settings come from the standard AWS variables: AWS_ENDPOINT_URL_S3 (or
AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. Addressing is
path-style, as radosgw needs. Reading goes through pyarrow datasets with pyarrow's own S3
client (s3_filesystem), which works offline — DuckDB's httpfs extension would be downloaded at
run time."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from fraudwatch.errors import UserError

Location = str | Path

S3_SCHEME = "s3://"
# Written last: their presence marks a complete data set.
MANIFESTS = ("manifest.json", "run.json")


def is_s3(location: Location) -> bool:
    return str(location).startswith(S3_SCHEME)


def s3_path(location: str) -> str:
    """'s3://bucket/prefix' → 'bucket/prefix' (pyarrow's form)."""
    path = str(location)[len(S3_SCHEME) :].strip("/")
    if not path or "/" not in path:
        raise UserError(f"{location}: use s3://BUCKET/PREFIX (a bucket alone is not a data set)")
    return path


def s3_endpoint() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise UserError(
            "s3:// locations need the S3 endpoint: set AWS_ENDPOINT_URL_S3 (e.g. http://127.0.0.1:7480) "
            "and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        )
    return endpoint


def s3_filesystem() -> pafs.S3FileSystem:
    endpoint = urlparse(s3_endpoint())
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise UserError("s3:// locations need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return pafs.S3FileSystem(
        access_key=key,
        secret_key=secret,
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme or "http",
        force_virtual_addressing=False,
        allow_bucket_creation=True,
    )


def check_s3_settings(location: str, key: str) -> None:
    """A one-line error naming the configuration key and the missing setting, before any work."""
    try:
        s3_path(location)
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


def s3a_settings() -> dict[str, str]:
    """Spark settings for s3a:// against the configured path-style endpoint."""
    endpoint = s3_endpoint()
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
        # Keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else from the shared credentials
        # file (AWS_SHARED_CREDENTIALS_FILE: how the Helm chart mounts them).
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider,"
            "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider"
        ),
        # radosgw 16 rejects the AWS SDK v2's streaming checksums on plain HTTP.
        "spark.hadoop.fs.s3a.signing-algorithm": "AWS4UnsignedPayloadSignerType",
    }


def join(base: Location, *parts: str) -> Location:
    """`base/part/...`, a Path locally and an s3:// string on S3."""
    if is_s3(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return Path(base).joinpath(*parts)


def filesystem_and_path(location: Location) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system of `location` and its path there."""
    if is_s3(location):
        return s3_filesystem(), s3_path(str(location))
    return pafs.LocalFileSystem(), str(Path(location).absolute())


def read_text(location: Location) -> str | None:
    """A small file (a manifest) as text, or None when it does not exist."""
    if not is_s3(location):
        p = Path(location)
        return p.read_text() if p.is_file() else None
    fs = s3_filesystem()
    path = s3_path(str(location))
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return stream.read().decode()


def is_file(location: Location) -> bool:
    if not is_s3(location):
        return Path(location).is_file()
    fs, path = filesystem_and_path(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def list_parquet(location: Location) -> list[str]:
    """Parquet files under a directory or prefix (recursively), sorted."""
    if not is_s3(location):
        folder = Path(location)
        return [str(p) for p in sorted(folder.rglob("*.parquet"))] if folder.is_dir() else []
    fs = s3_filesystem()
    selector = pafs.FileSelector(s3_path(str(location)), allow_not_found=True, recursive=True)
    return sorted(i.path for i in fs.get_file_info(selector) if i.path.endswith(".parquet"))


def subfolders(location: Location) -> list[str]:
    """Names of the folders directly below `location`, sorted (none when it does not exist)."""
    if not is_s3(location):
        folder = Path(location)
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    fs, path = filesystem_and_path(location)
    selector = pafs.FileSelector(path, allow_not_found=True, recursive=False)
    return sorted(
        i.base_name for i in fs.get_file_info(selector) if i.type == pafs.FileType.Directory
    )


def dataset(location: Location):
    """The Parquet files under `location` (recursively) as one pyarrow dataset, or None when
    there are none. No partitioning is inferred: `date=...` folders add no column."""
    import pyarrow.dataset as ds

    files = list_parquet(location)
    if not files:
        return None
    fs, _ = filesystem_and_path(location)
    if not is_s3(location):
        files = [str(Path(f).absolute()) for f in files]
    return ds.dataset(files, filesystem=fs, format="parquet")


def read_table(location: Location, columns: list[str] | None = None):
    """One Parquet file as an Arrow table."""
    import pyarrow.parquet as pq

    fs, path = filesystem_and_path(location)
    return pq.read_table(path, filesystem=fs, columns=columns, partitioning=None)


def download(location: Location, target: Path, skip: Iterable[str] = ()) -> list[Path]:
    """Copy the Parquet files below `location` into the local folder `target` (same relative
    paths; local sources are hard-linked where possible). `skip`: top-level folders left out."""
    skipped = set(skip)
    out = []
    fs, root = filesystem_and_path(location)
    base = Path(root) if is_s3(location) else Path(location)
    for name in list_parquet(location):
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
