"""The vector log: a collection's vectors in files of their own, appended to and memory-mapped.

    vectors/<generation>.f32      float32 rows of ``dim`` values, as the indexes read them (unit length under
                                  cosine); row r of every index is row r here
    vectors/<generation>.labels   int64 per row: the label of the point in that row
    vectors/<generation>.norms    float32 per row, cosine collections only: each vector's length before it was
                                  normalised, so ``get`` gives back the vector that was stored

The collection's SQLite file says which generation is current and how many of its rows are committed (meta
``log_generation`` / ``log_rows``) and keeps a CRC32 per appended batch (table ``batches``).  A write appends its
rows after the committed ones, fsyncs them, and only then commits the SQLite transaction that names them: bytes
past the committed rows are a write that never committed (a crash between the fsync and the commit, or a batch
refused after its append) and the next write overwrites them.  Rows are never changed in place: a deleted point's
row stays until a new generation is written whole (compaction, or the order an IVF index reads fastest) and
switched to in one commit; a process still mapping the old files keeps reading them until it catches up.

The files grow by doubling (``ftruncate``, sparse: no disk blocks until written) so that a reader's mapping is
renewed only when the capacity doubles, not after every write; mapped pages stay shared with the page cache and
between processes.
"""

from __future__ import annotations

import errno
import mmap
import os
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import StorageFormatError, StorageFullError
from .formats import fsync_dir as _fsync_dir

LOG_DIR = "vectors"
MIN_CAPACITY_ROWS = 1024
#: times the files' sizes are read again when one was cut while being mapped (then only committed rows)
MAP_ATTEMPTS = 3
MAX_GROWTH_BYTES = 256 << 20  # past this size a file grows by 256 MB at a time, not by doubling


def new_generation() -> str:
    return uuid.uuid4().hex


@dataclass
class LogRows:
    """Views of the first ``n`` committed rows (read-only, memory-mapped)."""

    vectors: np.ndarray  # (n, dim) float32
    labels: np.ndarray  # (n,) int64
    norms: np.ndarray | None  # (n,) float32, cosine only


@dataclass(frozen=True)
class Column:
    """One file of a generation: ``row_shape`` values of ``dtype`` per row."""

    path: Path
    dtype: np.dtype
    row_shape: tuple[int, ...]

    @property
    def width(self) -> int:
        """Bytes per row."""
        return self.dtype.itemsize * int(np.prod(self.row_shape))


def mapping_of(array: np.ndarray | None) -> mmap.mmap | None:
    """The memory mapping an array views (through its chain of bases), or None for an array in memory."""
    while array is not None and not isinstance(getattr(array, "_mmap", None), mmap.mmap):
        array = getattr(array, "base", None)
    return None if array is None else array._mmap


class VectorLog:
    """One generation of a collection's vector files.  Thread-safe for one appender and many readers: an append
    writes past every committed row, and a reader's view ends at the committed rows it was given."""

    def __init__(self, directory: Path, generation: str, dim: int, *, with_norms: bool):
        self.directory = Path(directory)
        self.generation = generation
        self.dim = dim
        self.with_norms = with_norms
        self._mapped_rows = 0
        self._maps: LogRows | None = None  # plain arrays over the mapped pages (see _map)

    # ------------------------------------------------------------------ files
    def columns(self) -> dict[str, Column]:
        """The generation's files: ``vectors`` and ``labels``, and ``norms`` under cosine."""
        stem = self.directory / self.generation
        columns = {"vectors": Column(stem.with_suffix(".f32"), np.dtype("<f4"), (self.dim,)),
                   "labels": Column(stem.with_suffix(".labels"), np.dtype("<i8"), ())}
        if self.with_norms:
            columns["norms"] = Column(stem.with_suffix(".norms"), np.dtype("<f4"), ())
        return columns

    def paths(self) -> list[Path]:
        return [column.path for column in self.columns().values()]

    def exists(self) -> bool:
        return all(path.exists() for path in self.paths())

    def create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.paths():
            path.touch()

    def capacity_rows(self) -> int:
        """Rows every file can hold without growing (their sizes)."""
        return min(column.path.stat().st_size // column.width for column in self.columns().values())

    # ------------------------------------------------------------------ reading
    def rows(self, n: int) -> LogRows:
        """Read-only views of rows [0, n); ``n`` must be committed (the files then hold them)."""
        if n > self._mapped_rows:
            self._map(n)
        maps = self._maps
        if maps is None:
            return LogRows(np.empty((0, self.dim), np.float32), np.empty(0, np.int64),
                           np.empty(0, np.float32) if self.with_norms else None)
        return LogRows(maps.vectors[:n], maps.labels[:n], None if maps.norms is None else maps.norms[:n])

    def _map(self, n: int) -> None:
        """Map every file whole (its capacity: growing by appends then rarely needs a new mapping).  Another
        process's first append may cut the files back to their committed rows between the sizes read here and
        the mapping (``trim``): the sizes are then read again, and at last only the committed rows, which no one
        cuts, are mapped."""
        capacity = self.capacity_rows()
        for attempt in range(MAP_ATTEMPTS + 1):
            if capacity < n:
                raise StorageFormatError(
                    f"{self.directory}: the vector log {self.generation} holds {capacity} rows, SQLite committed {n}")
            try:
                arrays = {name: np.memmap(column.path, dtype=column.dtype, mode="r",
                                          shape=(capacity, *column.row_shape))
                          for name, column in self.columns().items()}
                break
            except ValueError:  # "mmap length is greater than file size": a file was cut meanwhile
                capacity = self.capacity_rows() if attempt + 1 < MAP_ATTEMPTS else n
        else:
            raise StorageFormatError(f"{self.directory}: the vector log {self.generation} could not be mapped")
        # readers get plain ndarray views of the mapped pages: slicing an np.memmap runs Python code (its
        # __getitem__ and __array_finalize__, about 1 us a slice), and every query slices the store's vectors
        # and labels; a plain view's .base is still the mapping (``mapping_of`` finds it there)
        views = {name: np.asarray(array) for name, array in arrays.items()}
        self._maps = LogRows(views["vectors"], views["labels"], views.get("norms"))
        self._mapped_rows = capacity

    def release_pages(self, column: str) -> None:
        """Let this process's mapping of a column (``labels``, ``norms``) go from its memory: the pages stay in
        the page cache and come back on the next access.  After a pass over every label (opening a collection),
        only the few that hits need are touched again."""
        handle = None if self._maps is None else mapping_of(getattr(self._maps, column))
        if handle is not None:
            try:
                handle.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError, AttributeError):
                pass

    # ------------------------------------------------------------------ writing
    def append(self, start: int, vectors: np.ndarray, labels: np.ndarray, norms: np.ndarray | None) -> int:
        """Write rows at [start, start + n), make them durable (fsync), read them back against their CRC32, and
        return it (the batch's checksum, recorded beside the commit; ``lookalike check`` verifies it later)."""
        try:
            return self._append(start, {"vectors": vectors, "labels": labels, "norms": norms})
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(f"{self.directory}: the disk is full ({exc}); the write was rolled back, "
                                       "nothing was lost") from None
            raise

    def _append(self, start: int, columns: dict[str, np.ndarray | None]) -> int:
        need = start + len(columns["labels"])
        crc = 0
        for name, column in self.columns().items():
            path, width = column.path, column.width
            data = np.ascontiguousarray(columns[name], dtype=column.dtype)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size < need * width:
                    os.ftruncate(fd, _grown(os.fstat(fd).st_size // width, need, width) * width)
                _pwrite_all(fd, memoryview(data).cast("B"), start * width)
                os.fdatasync(fd)  # the data (and the size, when it grew): what a reader after a crash needs
                written = zlib.crc32(memoryview(data).cast("B"))
                if zlib.crc32(os.pread(fd, data.nbytes, start * width)) != written:  # verified as stored
                    raise StorageFormatError(f"{path}: rows {start}..{need} read back differ from what was "
                                             "written; the write was rolled back")
            finally:
                os.close(fd)
            crc = zlib.crc32(memoryview(data).cast("B"), crc)
        return crc

    def checksum(self, start: int, n: int) -> int:
        """CRC32 of rows [start, start + n) as stored, computed as ``append`` did."""
        crc = 0
        for column in self.columns().values():
            width = column.width
            with open(column.path, "rb") as fh:
                fh.seek(start * width)
                remaining = n * width
                while remaining:
                    chunk = fh.read(min(remaining, 8 << 20))
                    if not chunk:
                        break
                    crc = zlib.crc32(chunk, crc)
                    remaining -= len(chunk)
        return crc

    def trim(self, n: int) -> None:
        """Cut the files to exactly ``n`` rows (call with the write lock held: nobody appends meanwhile)."""
        for column in self.columns().values():
            path, width = column.path, column.width
            if path.exists() and path.stat().st_size != n * width:
                os.truncate(path, n * width)
        self._maps, self._mapped_rows = None, 0

    def remove(self) -> None:
        self._maps, self._mapped_rows = None, 0
        for path in self.paths():
            path.unlink(missing_ok=True)


def write_generation(log: VectorLog, vectors: np.ndarray, labels: np.ndarray, norms: np.ndarray | None,
                     batch_rows: int = 1 << 16) -> list[tuple[int, int, int]]:
    """Write a whole generation (new files) in batches; returns its (first_row, n_rows, crc32) per batch."""
    log.create()
    batches = []
    for start in range(0, len(labels), batch_rows):
        stop = min(start + batch_rows, len(labels))
        crc = log.append(start, vectors[start:stop], labels[start:stop], None if norms is None else norms[start:stop])
        batches.append((start, stop - start, crc))
    log.trim(len(labels))
    _fsync_dir(log.directory)
    return batches


def _grown(capacity: int, need: int, width: int) -> int:
    """The new capacity (rows of ``width`` bytes) of a file that must hold ``need`` rows: doubling, at most
    256 MB more."""
    return max(need, MIN_CAPACITY_ROWS, min(2 * capacity, capacity + MAX_GROWTH_BYTES // width))


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while len(data):
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written
