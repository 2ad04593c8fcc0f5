"""Snapshots: a whole database at one moment in one tar file, taken while it serves; and restoring one.

A snapshot holds the database marker, then for each collection its index files, its SQLite file and the rows of
its vector log that this SQLite copy commits (rows are only appended, so they are copied while writers go on), and
last a manifest (``snapshot.json``: format and version, the database format version, every file with its size and
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
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import StorageFormatError
from .vector_log import LOG_DIR

SNAPSHOT_FORMAT = "lookalike-snapshot"
SNAPSHOT_VERSION = 1
MANIFEST = "snapshot.json"
COPY_ATTEMPTS = 5  # an index directory swapped by a save while it is copied is copied again
COPY_BUFFER = 1 << 20
FLUSH_BYTES = 16 << 20  # written data is flushed to disk every 16 MB: a writer's fsync never waits behind more


def take_snapshot(db_path: Path, out: Path, database_format: tuple[str, str, int], sqlite_file: str) -> dict[str, Any]:
    """Write the snapshot of the database at ``db_path`` to ``out``; returns ``{"name", "size", "seconds"}``.

    Every file goes straight into the tar, hashed on the way (one read of each byte, one write): only the
    SQLite copy, which the backup API writes to a file, is staged, and it holds no vectors.  The manifest is the
    last member."""
    started = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    marker, fmt, version = database_format
    partial = out.with_name(f".{out.name}.partial")
    files: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=".snapshot-", dir=out.parent) as tmp, open(partial, "wb") as raw:
        # 1 MB at a time (tarfile's default is 16 KB: many more turns of Python, each taking the GIL from the
        # searches and writes the snapshot runs beside)
        with tarfile.open(fileobj=_FlushingWriter(raw), mode="w", copybufsize=COPY_BUFFER) as tar:
            def add(name: str, source, size: int) -> None:
                files[name] = _add_streamed(tar, f"db/{name}", source, size)

            with open(db_path / marker, "rb") as handle:
                add(marker, handle, os.fstat(handle.fileno()).st_size)
            collections = db_path / "collections"
            for directory in sorted(p for p in collections.iterdir() if p.is_dir() and not p.name.startswith(".")):
                prefix = f"collections/{directory.name}"
                for name, handle in _open_index_files(directory / "derived"):
                    with handle:
                        add(f"{prefix}/derived/{name}", handle, os.fstat(handle.fileno()).st_size)
                with _open_log_files(directory / LOG_DIR) as log_files:  # held open: a rewrite may unlink them
                    copy = Path(tmp) / f"{directory.name}.sqlite"
                    _backup_sqlite(directory / sqlite_file, copy)
                    with open(copy, "rb") as handle:
                        add(f"{prefix}/{sqlite_file}", handle, os.fstat(handle.fileno()).st_size)
                    for name, handle, size in _committed_log(log_files, copy):
                        add(f"{prefix}/{LOG_DIR}/{name}", handle, size)
                    copy.unlink()
            manifest = {"format": SNAPSHOT_FORMAT, "format_version": SNAPSHOT_VERSION, "database_format": fmt,
                        "database_format_version": version,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
            body = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(body))
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, out)
    return {"name": out.name, "size": out.stat().st_size, "seconds": round(time.perf_counter() - started, 3)}


def _add_streamed(tar: tarfile.TarFile, arcname: str, source, size: int) -> dict[str, Any]:
    """Put ``size`` bytes of ``source`` (from its start) in the tar as ``arcname``; their size and SHA-256."""
    source.seek(0)
    reader = _HashingReader(source, size)
    info = tarfile.TarInfo(arcname)
    info.size, info.mtime, info.mode = size, int(time.time()), 0o644
    tar.addfile(info, reader)
    return {"size": size, "sha256": reader.digest.hexdigest()}


class _HashingReader:
    """At most ``size`` bytes of a file, hashed as tarfile reads them."""

    def __init__(self, source, size: int):
        self.source, self.remaining = source, size
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n is None or n < 0 else min(n, self.remaining)
        data = self.source.read(n)
        self.remaining -= len(data)
        self.digest.update(data)
        return data


def _open_index_files(derived: Path):
    """(name relative to derived/, open file) of every saved index file.  An index directory is opened whole
    and checked not to have been swapped by a save meanwhile (then it is opened again), so its files are of one
    save; the open files keep their content even if a save replaces them afterwards."""
    if not derived.exists():
        return
    for directory in sorted(p for p in derived.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for _ in range(COPY_ATTEMPTS):
            try:
                before = directory.stat().st_ino
                handles = [(f"{directory.name}/{f.name}", open(f, "rb")) for f in sorted(directory.iterdir())
                           if f.is_file()]
            except FileNotFoundError:
                continue
            try:
                same = directory.stat().st_ino == before
            except FileNotFoundError:
                same = False
            if same:
                yield from handles
                break
            for _, handle in handles:
                handle.close()


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


def _committed_log(log_files: dict[str, Any], sqlite_copy: Path):
    """(name, open file, bytes) of the vector log's rows that the copied SQLite file commits, and no byte more:
    rows are only ever appended past the committed ones, so the files' first rows are the copy's, whatever
    writers do meanwhile."""
    from ..metrics import get_metric
    from .vector_log import VectorLog

    conn = sqlite3.connect(str(sqlite_copy))
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()
    if "log_generation" not in meta:
        return
    config = json.loads(meta["config"])
    log = VectorLog(Path("."), meta["log_generation"], int(config["dim"]),
                    with_norms=get_metric(config["metric"]).normalize)
    rows = int(meta["log_rows"])
    for column in log.columns().values():
        name, size = column.path.name, rows * column.width
        handle = log_files.get(name)
        if handle is None and rows == 0:  # nothing appended yet: the files may not exist
            yield name, io.BytesIO(b""), 0
            continue
        if handle is None:
            raise StorageFormatError(f"the vector log file {name} vanished while the snapshot was taken")
        if os.fstat(handle.fileno()).st_size < size:
            raise StorageFormatError(f"the vector log file {name} is shorter than its committed rows")
        yield name, handle, size


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
