"""Snapshots: a whole database at one moment in one tar file, taken while it serves; and restoring one.

A snapshot holds the database marker, then for each collection its index files, its SQLite file and the rows of
its vector log that this SQLite copy commits (rows are only appended, so they are copied while writers go on), and a
manifest (``snapshot.json``: format and version, the database format version, every file with its size and
SHA-256).  The SQLite file is copied with SQLite's online backup API in one read transaction, so it is one
consistent state while writers go on (in WAL mode a reader never blocks them); the index files are copied *before* it,
so each covers a change-log version at or below the copied data's and catches up on open from the change log, as
after any restart: the restored indexes serve without a rebuild.

Restoring checks everything before anything is visible: the manifest's format and version (a newer snapshot is
refused), every member's name (no absolute path, no ``..``, regular files only), size and checksum; it unpacks into
a hidden directory beside the target and renames it into place, so a truncated or altered snapshot leaves nothing
behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import StorageFormatError
from .vector_log import LOG_DIR

SNAPSHOT_FORMAT = "lookalike-snapshot"
SNAPSHOT_VERSION = 1
MANIFEST = "snapshot.json"
COPY_ATTEMPTS = 5  # an index directory swapped by a save while it is copied is copied again
FLUSH_BYTES = 16 << 20  # written data is flushed to disk every 16 MB: a writer's fsync never waits behind more


def take_snapshot(db_path: Path, out: Path, database_format: tuple[str, str, int], sqlite_file: str) -> dict[str, Any]:
    """Write the snapshot of the database at ``db_path`` to ``out``; returns ``{"name", "size", "seconds"}``."""
    started = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    marker, fmt, version = database_format
    with tempfile.TemporaryDirectory(prefix=".snapshot-", dir=out.parent) as tmp:
        stage = Path(tmp) / "db"
        stage.mkdir()
        shutil.copy2(db_path / marker, stage / marker)
        collections = db_path / "collections"
        for directory in sorted(p for p in collections.iterdir() if p.is_dir() and not p.name.startswith(".")):
            target = stage / "collections" / directory.name
            target.mkdir(parents=True)
            _copy_index_files(directory / "derived", target / "derived")
            with _open_log_files(directory / LOG_DIR) as log_files:  # held open: a rewrite may unlink them
                _backup_sqlite(directory / sqlite_file, target / sqlite_file)
                _copy_committed_log(log_files, target / sqlite_file, target / LOG_DIR)
        files = {path.relative_to(stage).as_posix(): _describe(path) for path in sorted(stage.rglob("*"))
                 if path.is_file()}
        manifest = {"format": SNAPSHOT_FORMAT, "format_version": SNAPSHOT_VERSION, "database_format": fmt,
                    "database_format_version": version, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "files": files}
        (Path(tmp) / MANIFEST).write_text(json.dumps(manifest, indent=1))
        partial = out.with_name(f".{out.name}.partial")
        with open(partial, "wb") as raw:
            with tarfile.open(fileobj=_FlushingWriter(raw), mode="w") as tar:
                tar.add(Path(tmp) / MANIFEST, arcname=MANIFEST)
                for name in files:
                    tar.add(stage / name, arcname=f"db/{name}")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    return {"name": out.name, "size": out.stat().st_size, "seconds": round(time.perf_counter() - started, 3)}


def restore_snapshot(file: Path, target: Path, database_format: tuple[str, str, int]) -> None:
    """Unpack the snapshot ``file`` as a new database at ``target`` (absent or an empty directory), or raise
    StorageFormatError and leave nothing behind."""
    file, target = Path(file), Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StorageFormatError(f"cannot restore into {target}: it is not empty (restore into a new directory)")
    if not file.is_file():
        raise StorageFormatError(f"no snapshot file at {file}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    try:
        _unpack(file, staging, database_format)
        if target.exists():
            target.rmdir()
        os.replace(staging / "db", target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _unpack(file: Path, staging: Path, database_format: tuple[str, str, int]) -> dict[str, Any]:
    _, fmt, version = database_format
    try:
        with tarfile.open(file, "r:") as tar:
            members = {member.name: member for member in tar.getmembers()}
            manifest = _read_manifest(tar, members)
            if manifest.get("database_format") != fmt or manifest.get("database_format_version") != version:
                raise StorageFormatError(
                    f"{file} holds a database of format {manifest.get('database_format')!r} version "
                    f"{manifest.get('database_format_version')}; this lookalike reads {fmt!r} version {version}")
            expected = manifest.get("files")
            if not isinstance(expected, dict):
                raise StorageFormatError(f"{file}: its manifest lists no files")
            listed = {f"db/{name}" for name in expected}
            present = set(members) - {MANIFEST}
            if listed != present:
                raise StorageFormatError(f"{file} does not hold the files its manifest lists (missing "
                                         f"{sorted(listed - present)[:3]}, extra {sorted(present - listed)[:3]})")
            for name, described in expected.items():
                member = members[f"db/{name}"]
                _check_member_name(name)
                if not member.isfile():
                    raise StorageFormatError(f"{file}: {name} is not a regular file")
                destination = staging / "db" / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
                if _describe(destination) != described:
                    raise StorageFormatError(f"{file}: {name} does not match its checksum: the snapshot was altered")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise StorageFormatError(f"{file} is not a whole lookalike snapshot (truncated or corrupt): {exc}") from None
    return manifest


def _read_manifest(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> dict[str, Any]:
    if MANIFEST not in members:
        raise StorageFormatError(f"{tar.name} is not a lookalike snapshot: no {MANIFEST}")
    try:
        manifest = json.loads(tar.extractfile(members[MANIFEST]).read())
    except ValueError as exc:
        raise StorageFormatError(f"{tar.name}: its manifest is corrupt: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
        raise StorageFormatError(f"{tar.name} is not a lookalike snapshot")
    if manifest.get("format_version") != SNAPSHOT_VERSION:
        raise StorageFormatError(f"{tar.name} is a snapshot of format_version {manifest.get('format_version')}; "
                                 f"this lookalike reads {SNAPSHOT_VERSION}: restore it with the release that made it")
    return manifest


def _check_member_name(name: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise StorageFormatError(f"a snapshot member may not be named {name!r}")


def _describe(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


class _FlushingWriter:
    """A binary file that makes its data durable every FLUSH_BYTES: the snapshot never piles up hundreds of MB of
    dirty pages that a writer's fsync (a collection commit) would then wait behind."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.pending = 0

    def write(self, data) -> int:
        written = self.handle.write(data)
        self.pending += len(data)
        if self.pending >= FLUSH_BYTES:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.pending = 0
        return written

    def __getattr__(self, name: str):
        return getattr(self.handle, name)


def _copy_flushing(source: str, target: str) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, _FlushingWriter(dst), 1 << 20)
    shutil.copystat(source, target)


def _copy_index_files(source: Path, target: Path) -> None:
    """The collection's index directories; one that a save swaps while it is read is copied again."""
    if not source.exists():
        return
    for directory in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for attempt in range(COPY_ATTEMPTS):
            try:
                shutil.copytree(directory, target / directory.name, dirs_exist_ok=False, copy_function=_copy_flushing)
                break
            except (FileNotFoundError, shutil.Error):
                shutil.rmtree(target / directory.name, ignore_errors=True)
                if attempt == COPY_ATTEMPTS - 1 or not directory.exists():
                    break  # gone (dropped): an index file is a cache, the collection rebuilds it


class _open_log_files:
    """Every vector log file of a collection, opened (name -> file object) for the time of a snapshot."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.files: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        if self.directory.exists():
            for path in sorted(self.directory.iterdir()):
                try:
                    self.files[path.name] = open(path, "rb")
                except FileNotFoundError:
                    pass
        return self.files

    def __exit__(self, *exc: Any) -> None:
        for handle in self.files.values():
            handle.close()


def _copy_committed_log(log_files: dict[str, Any], sqlite_copy: Path, target: Path) -> None:
    """The vector log's rows that the copied SQLite file commits, and no byte more: rows are only ever appended
    past the committed ones, so the first rows of the files are the copy's, whatever writers do meanwhile."""
    from .vector_log import VectorLog

    conn = sqlite3.connect(str(sqlite_copy))
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()
    if "log_generation" not in meta:
        return
    config = json.loads(meta["config"])
    from ..metrics import get_metric

    log = VectorLog(target, meta["log_generation"], int(config["dim"]),
                    with_norms=get_metric(config["metric"]).normalize)
    rows = int(meta["log_rows"])
    target.mkdir(parents=True, exist_ok=True)
    for path, dtype, tail in log._files().values():
        width = dtype.itemsize * int(np.prod(tail))
        source = log_files.get(path.name)
        if source is None and rows == 0:  # nothing appended yet: the files may not exist
            path.touch()
            continue
        if source is None:
            raise StorageFormatError(f"the vector log file {path.name} vanished while the snapshot was taken")
        source.seek(0)
        remaining = rows * width
        with open(path, "wb") as sink:
            writer = _FlushingWriter(sink)
            while remaining:
                chunk = source.read(min(remaining, 1 << 20))
                if not chunk:
                    raise StorageFormatError(f"the vector log file {path.name} is shorter than its committed rows")
                writer.write(chunk)
                remaining -= len(chunk)
            sink.flush()
            os.fsync(sink.fileno())


def _backup_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup in one step: one read transaction of the source, which in WAL mode never blocks its
    writers (they append to the log meanwhile).  Stepwise backups restart whenever another connection writes, so
    under a steady writer they may never end."""
    src = sqlite3.connect(str(source), timeout=30.0)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())
