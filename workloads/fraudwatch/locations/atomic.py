"""Outputs appear whole or not at all. Locally everything is written to a temporary sibling
first and renamed into place only when complete, so a failed or interrupted run leaves nothing
behind. On S3, which has no rename, a finished folder is uploaded from a local staging
directory: a new data set with its manifests last (output_location); a folder that replaces
another first under `<root>/_staging/<token>/` (the slow, fallible part: a failure there leaves
the old folder as it was), then the manifests are deleted, the folder's objects deleted and
replaced by server-side copies of the staged ones, the manifests copied last and the staging
prefix removed (swap_in). A folder whose manifest is missing is one whose write did not
finish."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pyarrow.fs as pafs

from fraudwatch.errors import UserError
from fraudwatch.locations.storage import (
    MANIFESTS,
    Location,
    filesystem_and_path,
    is_s3,
    s3_filesystem,
    s3_path,
)

#: Where `swap_in` uploads before swapping (underscore: pyarrow datasets never read it).
STAGING = "_staging"


def _create_parent(target: Path) -> Path:
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {parent}: {exc.strerror}; choose another --out") from None
    return parent


def _check_writable_parent(target: Path) -> Path:
    parent = _create_parent(target)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{parent} is not writable; choose another --out or fix its permissions")
    return parent


@contextmanager
def atomic_directory(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes `target` when the block succeeds."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a directory; choose another --out")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite to replace it")
    parent = _check_writable_parent(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces `target` when the block succeeds."""
    target = Path(target)
    if target.is_dir():
        raise UserError(f"{target} is a directory; give a file name such as report.html")
    parent = _check_writable_parent(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        swap_in(holder, str(root), [folder], [f"{folder}/{m}" for m in manifests])
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def write_text(location: Location, text: str) -> None:
    """A small file written whole: a rename locally, a single PUT on S3 (atomic there)."""
    if not is_s3(location):
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            tmp.write_text(text)
        return
    fs, path_on_s3 = filesystem_and_path(location)
    try:
        with fs.open_output_stream(path_on_s3) as stream:
            stream.write(text.encode())
    except OSError as exc:
        raise UserError(f"cannot write {location}: {str(exc).splitlines()[0]}") from None


def swap_directory(staged: Path, target: Path) -> None:
    """Replace the folder `target` with `staged` (same file system): two renames."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, trash / "x")
        os.replace(staged, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, target)


@contextmanager
def staging_beside(root: Location, label: str) -> Iterator[Path]:
    """A private local folder to write folders of `root` into before `replace_folders` puts
    them in place: beside a local `root` (on its file system, so the renames stay atomic), in
    the system's temporary folder for S3. Removed afterwards with whatever is left in it."""
    parent = None if is_s3(root) else _create_parent(Path(root))
    holder = Path(tempfile.mkdtemp(prefix=f".{Path(root).name}.{label}-", dir=parent))
    try:
        yield holder
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def replace_folders(staged: Path, root: Location, folders: list[str], manifests: list[str]) -> None:
    """Replace the folders `folders` below `root` with the same folders of `staged`;
    `manifests` (paths below `root`, inside those folders) are removed first and come back
    last. Locally each folder is renamed into place in the order given (the one with the
    manifests last); on S3 it is swap_in."""
    if is_s3(root):
        swap_in(staged, str(root), folders, manifests)
        return
    for m in manifests:
        (Path(root) / m).unlink(missing_ok=True)  # not complete from here on
    for folder in folders:
        swap_directory(staged / folder, Path(root) / folder)
