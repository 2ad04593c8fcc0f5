"""Moving a database written by an older release to the present layout, and checking a database's files.

Format 1 (releases up to this one) kept each vector twice: a blob in its SQLite row and a row of the saved exact
index (``derived/flat/vectors.npy``).  Format 2 keeps it once, in the vector log (storage/vector_log.py).  A
format-1 collection is migrated by writing its vectors as the log's first generation, in the rows of the saved
exact index when it is there and ours (so that the other saved indexes, which name those rows, open without a
rebuild), then, in one SQLite transaction, recording the log's batches, dropping the vector column and the
change log's additions and setting format_version 2.  A crash before that commit leaves the collection in format 1
(the half-written log files are written again); after it, in format 2.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StorageFormatError
from ..metrics import get_metric, prepare
from .sqlite import BATCHES_TABLE, SCHEMA_VERSION, CollectionStore
from .vector_log import LOG_DIR, VectorLog, new_generation, write_generation


def migrate_collection(directory: Path, sqlite_file: str) -> bool:
    """Migrate one collection directory to the present format; returns whether anything was done."""
    file = directory / sqlite_file
    conn = sqlite3.connect(str(file), isolation_level=None)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format_version") == str(SCHEMA_VERSION):
            return False
        if meta.get("format_version") != "1":
            raise StorageFormatError(f"{file} has format_version {meta.get('format_version')}: cannot migrate it")
        config = json.loads(meta["config"])
        spec = get_metric(config["metric"])
        dim = int(config["dim"])
        rows = conn.execute("SELECT label, vector FROM points ORDER BY label").fetchall()
        labels = np.array([r[0] for r in rows], dtype=np.int64)
        raw = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim).astype(np.float32)
        generation, row_labels, vectors = _rows_in_saved_order(directory, config, labels, raw, spec)
        norms = None
        if spec.normalize:
            by_label = dict(zip(labels.tolist(), np.linalg.norm(raw, axis=1).tolist()))
            norms = np.array([by_label.get(int(l), 1.0) for l in row_labels], dtype=np.float32)
        log = VectorLog(directory / LOG_DIR, generation, dim, with_norms=spec.normalize)
        batches = write_generation(log, vectors, row_labels, norms)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(BATCHES_TABLE)
        conn.executemany("INSERT INTO batches VALUES (?, ?, ?, ?)", ((generation, *b) for b in batches))
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
            ("log_generation", generation), ("log_rows", str(len(row_labels))),
            ("format_version", str(SCHEMA_VERSION))])
        conn.execute("DELETE FROM changes WHERE op > 0")
        conn.execute("ALTER TABLE points DROP COLUMN vector")
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        raise StorageFormatError(f"{file}: cannot migrate it: {exc}") from None
    finally:
        conn.close()
    shutil.rmtree(directory / "derived" / "flat", ignore_errors=True)  # its vectors are the log now
    return True


def _rows_in_saved_order(directory: Path, config: dict[str, Any], labels: np.ndarray, raw: np.ndarray, spec):
    """(generation, labels per row, prepared vectors per row): the saved exact index's rows (dead ones
    included) then the points it had not seen, in label order; or every point in label order under a new
    generation when there is no usable saved exact index.  Saved indexes that cannot sit on these rows go."""
    from ..index.base import Index

    prepared = prepare(raw.copy(), spec)
    derived = directory / "derived"
    try:
        flat = Index.load(derived / "flat", mmap=True)
        if flat.stamp.get("uuid") != config["uuid"] or not flat.owns_vectors:
            raise StorageFormatError("not this collection's")
    except StorageFormatError:
        _drop_indexes_beside(derived, None, 0)
        return new_generation(), labels, prepared
    saved_labels = np.asarray(flat.labels)
    unseen = ~np.isin(labels, saved_labels)
    _drop_indexes_beside(derived, flat.generation, flat.n_rows)
    row_labels = np.concatenate([saved_labels, labels[unseen]])
    vectors = np.concatenate([np.asarray(flat.vectors, dtype=np.float32), prepared[unseen]])
    return flat.generation, row_labels, vectors


def _drop_indexes_beside(derived: Path, generation: str | None, rows: int) -> None:
    """Remove saved indexes that do not name the rows the log is given (they are rebuilt on open)."""
    if not derived.exists():
        return
    for path in derived.iterdir():
        if not path.is_dir() or path.name == "flat" or path.name.startswith("."):
            continue
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            fits = manifest.get("source_generation") == generation and int(manifest.get("n_rows", 0)) <= rows
        except (OSError, ValueError):
            fits = False
        if not fits or generation is None:
            shutil.rmtree(path, ignore_errors=True)


def check_collection(directory: Path, sqlite_file: str) -> dict[str, Any]:
    """Read every committed row of the vector log against its batch checksums and run SQLite's integrity check.
    Returns what was checked; a mismatch raises StorageFormatError saying where."""
    store = CollectionStore(directory / sqlite_file)
    try:
        with store.transaction_read():
            generation, rows = store.log_state()
            batches = store.batches(generation)
            dim, metric = int(store.config["dim"]), store.config["metric"]
            integrity = store.conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        store.close()
    if integrity != "ok":
        raise StorageFormatError(f"{directory / sqlite_file}: SQLite integrity check: {integrity}")
    log = VectorLog(directory / LOG_DIR, generation, dim, with_norms=get_metric(metric).normalize)
    covered = 0
    for first, n, crc in batches:
        if first != covered:
            raise StorageFormatError(f"{directory}: the vector log's batches leave rows {covered}..{first} out")
        if log.checksum(first, n) != crc:
            raise StorageFormatError(f"{directory}: rows {first}..{first + n} of the vector log are corrupt "
                                     "(checksum mismatch)")
        covered += n
    if covered != rows:
        raise StorageFormatError(f"{directory}: the batches cover {covered} rows, SQLite committed {rows}")
    if rows and log.capacity_rows() < rows:
        raise StorageFormatError(f"{directory}: the vector log is shorter than its {rows} committed rows")
    return {"rows": rows, "batches": len(batches), "generation": generation}
