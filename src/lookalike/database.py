"""A Database: named collections under one root directory.

    root/
      lookalike.json                 {"format": "lookalike-database", "format_version": 2}: marks the directory as ours
      collections/<name>/
        collection.sqlite (+ -wal, -shm)     ids, metadata, change log (see storage/sqlite.py)
        vectors/<generation>.f32 ...         the vector log: the vectors, one copy (see storage/vector_log.py)
        derived/<index>/                     manifest.json + .npy per array: caches, rebuilt when stale or corrupt

A database of format 1 (vectors in SQLite rows) is migrated when it is opened (storage/migrate.py); one of a
newer format than this code reads is refused, untouched.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from .collection import Collection
from .errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidNameError,
    StorageFormatError,
)
from .metrics import get_metric
from ._validation import check_positive_int
from .storage.formats import read_format_json
from .storage.sqlite import CollectionStore

MARKER = "lookalike.json"
FORMAT = "lookalike-database"
FORMAT_VERSION = 2
MIGRATABLE_VERSIONS = (1,)
SQLITE_FILE = "collection.sqlite"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_DIM = 65_536


class Database:
    """``Database("path/")`` opens the database at path, creating it if the directory is absent or empty."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        self.path = Path(path)
        self._collections: dict[str, Collection] = {}
        marker = self.path / MARKER
        if marker.exists():
            self._check_marker(marker)
        elif self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise StorageFormatError(
                f"{self.path} is not a lookalike database (no {MARKER}) and is not empty: choose another path"
            )
        elif not create:
            raise StorageFormatError(f"{self.path} is not a lookalike database")
        else:
            (self.path / "collections").mkdir(parents=True, exist_ok=True)
            _write_marker(self.path)

    @staticmethod
    def _check_marker(marker: Path) -> None:
        if format_version_of(marker) in MIGRATABLE_VERSIONS:
            migrate(marker.parent)
        read_format_json(marker, FORMAT, FORMAT_VERSION, "a lookalike database")

    # ------------------------------------------------------------------ collections
    def create_collection(self, name: str, dim: int, metric: str = "cosine", *, embedder: str | None = None,
                          exist_ok: bool = False) -> Collection:
        check_name(name)
        dim = check_positive_int(dim, "dim")
        if dim > MAX_DIM:
            raise InvalidNameError(f"dim must be <= {MAX_DIM}, got {dim}")
        spec = get_metric(metric)
        directory = self._dir(name)
        if directory.exists():
            if exist_ok:
                col = self.get_collection(name)
                if (col.dim, col.metric) != (dim, spec.name):
                    raise CollectionExistsError(
                        f"collection {name!r} exists with dim={col.dim}, metric={col.metric!r}, "
                        f"not dim={dim}, metric={spec.name!r}"
                    )
                return col
            raise CollectionExistsError(f"collection {name!r} already exists: use get_collection or drop it first")
        tmp = self.path / "collections" / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        config = {"name": name, "dim": dim, "metric": spec.name, "embedder": embedder, "uuid": uuid.uuid4().hex}
        CollectionStore(tmp / SQLITE_FILE, create_config=config).close()
        try:
            os.rename(tmp, directory)  # a collection appears whole or not at all
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CollectionExistsError(f"collection {name!r} already exists") from None
        return self.get_collection(name)

    def get_or_create_collection(self, name: str, dim: int, metric: str = "cosine", **kw: Any) -> Collection:
        return self.create_collection(name, dim, metric, exist_ok=True, **kw)

    def get_collection(self, name: str) -> Collection:
        check_name(name)
        if name in self._collections:
            return self._collections[name]
        directory = self._dir(name)
        if not (directory / SQLITE_FILE).exists():
            raise CollectionNotFoundError(
                f"no collection {name!r} in {self.path}; existing: {self.list_collections() or 'none'}"
            )
        col = Collection(directory, CollectionStore(directory / SQLITE_FILE))
        self._collections[name] = col
        return col

    def list_collections(self) -> list[str]:
        root = self.path / "collections"
        return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / SQLITE_FILE).exists())

    def drop_collection(self, name: str) -> None:
        check_name(name)
        directory = self._dir(name)
        if not directory.exists():
            raise CollectionNotFoundError(f"no collection {name!r} in {self.path}")
        col = self._collections.pop(name, None)
        if col is not None:
            col.release()
        trash = directory.with_name(f".{name}.dropped-{uuid.uuid4().hex[:8]}")
        os.rename(directory, trash)  # atomic: the name is free at once
        shutil.rmtree(trash, ignore_errors=True)

    def __contains__(self, name: str) -> bool:
        return name in self.list_collections()

    def _dir(self, name: str) -> Path:
        return self.path / "collections" / name

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, path: str | os.PathLike) -> dict[str, Any]:
        """Write the whole database, as it is now, to one tar file at ``path`` while it keeps serving (see
        ``lookalike.storage.snapshots``); returns ``{"name", "size", "seconds"}``.  Open collections save their
        index caches first, so the snapshot's indexes are as fresh as they can be."""
        from .storage.snapshots import take_snapshot

        for col in self._collections.values():
            col.flush()
        return take_snapshot(self.path, Path(path), (MARKER, FORMAT, FORMAT_VERSION), SQLITE_FILE)

    @classmethod
    def restore(cls, file: str | os.PathLike, directory: str | os.PathLike) -> "Database":
        """A new database at ``directory`` (absent or empty) from the snapshot ``file``; a truncated or altered
        snapshot, one of a newer format, or a non-empty directory is a StorageFormatError, and nothing is left."""
        from .storage.snapshots import restore_snapshot

        restore_snapshot(Path(file), Path(directory), (MARKER, FORMAT, FORMAT_VERSION))
        return cls(directory, create=False)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Save index caches and close every collection.  Data needs no closing: each write already committed."""
        for col in self._collections.values():
            col.close()
        self._collections.clear()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"


def _write_marker(root: Path) -> None:
    """Mark ``root`` as a database of this format (written aside and renamed: whole or not at all)."""
    tmp = root / f".{MARKER}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION}))
    os.replace(tmp, root / MARKER)


def format_version_of(marker: Path) -> Any:
    """The format_version a database marker states (None when unreadable: the full check says why)."""
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise StorageFormatError(f"{marker.parent} was written by a newer lookalike (database format {version}, "
                                     f"this one reads {FORMAT_VERSION} and older): upgrade lookalike to open it")
        return version
    return None


def migrate(path: str | os.PathLike) -> list[str]:
    """Move the database at ``path`` to the present format, collection by collection (see
    ``lookalike.storage.migrate``); returns the collections migrated.  Safe to run twice, or after a crash."""
    from .storage.migrate import migrate_collection

    root = Path(path)
    marker = root / MARKER
    if format_version_of(marker) == FORMAT_VERSION:
        return []
    with open(marker, "r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # two processes opening an old database migrate it once
        if format_version_of(marker) == FORMAT_VERSION:
            return []
        moved = [d.name for d in sorted((root / "collections").iterdir())
                 if d.is_dir() and not d.name.startswith(".") and (d / SQLITE_FILE).exists()
                 and migrate_collection(d, SQLITE_FILE)]
        _write_marker(root)
    return moved


def check(path: str | os.PathLike) -> dict[str, Any]:
    """Verify every collection's vector log against its checksums and its SQLite file's integrity; returns a
    report per collection.  A damaged collection raises StorageFormatError naming it."""
    from .storage.migrate import check_collection

    db = Database(path, create=False)
    return {name: check_collection(db._dir(name), SQLITE_FILE) for name in db.list_collections()}


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        shown = repr(name) if not isinstance(name, str) or len(name) < 60 else repr(name[:57] + "...")
        raise InvalidNameError(
            f"invalid collection name {shown}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    return name
