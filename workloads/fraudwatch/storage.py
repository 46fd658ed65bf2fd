"""Where data lives: a local directory or an S3 prefix (Ceph radosgw in the cluster setup).

S3 settings come from the standard AWS variables: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL),
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. Addressing is path-style, as
radosgw needs. Outputs to S3 are staged in a local temporary directory and uploaded when
complete, manifests last, so a reader never sees a half-written data set."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from fraudwatch.errors import UserError
from fraudwatch.output import atomic_directory

S3_SCHEME = "s3://"
# Written last: their presence marks a complete data set.
MANIFESTS = ("manifest.json", "run.json")
#: Where `swap_in` uploads before swapping (underscore: pyarrow datasets never read it).
STAGING = "_staging"


def is_s3(location: str | Path) -> bool:
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


def _is_empty(fs: pafs.FileSystem, path: str) -> bool:
    info = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
    return not info


@contextmanager
def output_location(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A local directory to write into; it becomes `target` (local or S3) when complete."""
    if not is_s3(target):
        with atomic_directory(Path(target), overwrite) as tmp:
            yield tmp
        return
    fs, path = s3_filesystem(), s3_path(str(target))
    try:
        empty = _is_empty(fs, path)
    except OSError as exc:
        raise UserError(f"cannot reach {target}: {str(exc).splitlines()[0]}") from None
    if not empty and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite to replace it")
    staging = Path(tempfile.mkdtemp(prefix="fraudwatch-upload-"))
    try:
        yield staging
        if not empty:
            fs.delete_dir_contents(path, missing_dir_ok=True)
        fs.create_dir(path.split("/", 1)[0])
        manifests = [staging / m for m in MANIFESTS if (staging / m).is_file()]
        held = Path(tempfile.mkdtemp(prefix="fraudwatch-manifests-"))
        for m in manifests:
            shutil.move(m, held / m.name)
        pafs.copy_files(str(staging), path, destination_filesystem=fs)
        for m in manifests:
            pafs.copy_files(str(held / m.name), f"{path}/{m.name}", destination_filesystem=fs)
        shutil.rmtree(held, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_text(location: str | Path) -> str | None:
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


def list_parquet(location: str | Path) -> list[str]:
    """Parquet files under a directory or prefix (recursively), sorted."""
    if not is_s3(location):
        folder = Path(location)
        return [str(p) for p in sorted(folder.rglob("*.parquet"))] if folder.is_dir() else []
    fs = s3_filesystem()
    selector = pafs.FileSelector(s3_path(str(location)), allow_not_found=True, recursive=True)
    return sorted(i.path for i in fs.get_file_info(selector) if i.path.endswith(".parquet"))


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


def swap_in(staged: Path, root: str, folders: list[str], manifests: list[str]) -> None:
    """Replace the folders `folders` below the S3 prefix `root` with the same folders of the
    local directory `staged`; `manifests` (paths below `root`, inside those folders) are
    deleted first and written last."""
    fs, base = s3_filesystem(), s3_path(root)
    stage = f"{base}/{STAGING}/{uuid.uuid4().hex}"
    try:
        fs.create_dir(base.split("/", 1)[0])  # the bucket (radosgw creates it on request)
        pafs.copy_files(str(staged), stage, destination_filesystem=fs)
        held = set(manifests)
        for m in manifests:
            if fs.get_file_info(f"{base}/{m}").type == pafs.FileType.File:
                fs.delete_file(f"{base}/{m}")  # the day is incomplete from here on
        for folder in folders:
            fs.delete_dir_contents(f"{base}/{folder}", missing_dir_ok=True)
            selector = pafs.FileSelector(f"{stage}/{folder}", allow_not_found=True, recursive=True)
            for info in fs.get_file_info(selector):
                relative = info.path[len(stage) + 1 :]
                if info.type == pafs.FileType.File and relative not in held:
                    fs.copy_file(info.path, f"{base}/{relative}")  # server-side copy
        for m in manifests:
            fs.copy_file(f"{stage}/{m}", f"{base}/{m}")
    except OSError as exc:
        raise UserError(f"cannot write to {root}: {str(exc).splitlines()[0]}") from None
    finally:
        # A leftover staging prefix (a failed cleanup) is never read and removable at any time.
        with suppress(OSError):
            fs.delete_dir(stage)
