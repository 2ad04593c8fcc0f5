"""Readers for the files ``lookalike add`` takes, each yielding batches of (ids, vectors, metadata).

    .npy            a (n, d) array; ids are row numbers + ``start_id``
    .csv            a header; an ``id`` column, then either a ``vector`` column (JSON list) or numeric columns
                    named v0..v{d-1}; every other column becomes metadata (numbers parsed as numbers)
    .jsonl          one object per line: {"id": ..., "vector": [...], "metadata": {...}}
    .hdf5 / .h5     ann-benchmarks layout: the ``train`` dataset (or another, by name); ids are row numbers
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import InvalidInputError, StorageFormatError

Batch = tuple[list[Any], np.ndarray, list[dict[str, Any] | None] | None]


def detect_format(path: Path, given: str | None = None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    formats = {".npy": "npy", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".hdf5": "hdf5", ".h5": "hdf5"}
    if suffix not in formats:
        raise InvalidInputError(f"cannot tell the format of {path.name}: use --format npy|csv|jsonl|hdf5")
    return formats[suffix]


def count_rows(path: Path, fmt: str, dataset: str = "train") -> int | None:
    """Rows in the file, for the progress bar (None when counting would mean reading it twice)."""
    if fmt == "npy":
        return len(np.load(path, mmap_mode="r", allow_pickle=False))
    if fmt == "hdf5":
        import h5py

        with h5py.File(path, "r") as f:
            return len(f[dataset])
    return None


def read_batches(path: Path, fmt: str, batch_size: int = 10_000, *, start_id: int = 0,
                 dataset: str = "train") -> Iterator[Batch]:
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"no such file: {path}")
    readers = {"npy": _npy, "csv": _csv, "jsonl": _jsonl, "hdf5": _hdf5}
    if fmt not in readers:
        raise InvalidInputError(f"unknown format {fmt!r}: use one of {sorted(readers)}")
    if fmt == "hdf5":
        yield from _hdf5(path, batch_size, start_id, dataset)
    else:
        yield from readers[fmt](path, batch_size, start_id)


def _npy(path: Path, batch_size: int, start_id: int) -> Iterator[Batch]:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise StorageFormatError(f"{path} is not a readable .npy file: {exc}") from None
    if arr.ndim != 2:
        raise InvalidInputError(f"{path} holds a {arr.ndim}-D array; expected (n, dim)")
    for i in range(0, len(arr), batch_size):
        block = np.asarray(arr[i : i + batch_size])
        yield list(range(start_id + i, start_id + i + len(block))), block, None


def _hdf5(path: Path, batch_size: int, start_id: int, dataset: str) -> Iterator[Batch]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise StorageFormatError(f"{path} is not a readable HDF5 file: {exc}") from None
    with f:
        if dataset not in f:
            raise InvalidInputError(f"{path} has no dataset {dataset!r}; it has {sorted(f.keys())}")
        data = f[dataset]
        for i in range(0, len(data), batch_size):
            block = np.asarray(data[i : i + batch_size])
            yield list(range(start_id + i, start_id + i + len(block))), block, None


def _csv(path: Path, batch_size: int, start_id: int) -> Iterator[Batch]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if "id" not in columns:
            raise InvalidInputError(f"{path}: the CSV needs an 'id' column; it has {columns}")
        vector_cols = sorted((c for c in columns if c[:1] == "v" and c[1:].isdigit()), key=lambda c: int(c[1:]))
        if "vector" not in columns and not vector_cols:
            raise InvalidInputError(f"{path}: the CSV needs a 'vector' column or columns v0, v1, ...")
        meta_cols = [c for c in columns if c not in ("id", "vector", *vector_cols)]
        rows: list[dict[str, str]] = []
        for line_no, row in enumerate(reader, start=2):
            rows.append(row)
            if len(rows) == batch_size:
                yield _csv_batch(rows, vector_cols, meta_cols, path)
                rows = []
        if rows:
            yield _csv_batch(rows, vector_cols, meta_cols, path)


def _csv_batch(rows, vector_cols, meta_cols, path) -> Batch:
    ids = [_parse_id(r["id"]) for r in rows]
    try:
        if vector_cols:
            vectors = np.array([[float(r[c]) for c in vector_cols] for r in rows], dtype=np.float32)
        else:
            vectors = np.array([json.loads(r["vector"]) for r in rows], dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path}: a vector is not a list of numbers: {exc}") from None
    metas = [{c: _parse_scalar(r[c]) for c in meta_cols if r.get(c) not in (None, "")} or None for r in rows]
    return ids, vectors, metas


def _jsonl(path: Path, batch_size: int, start_id: int) -> Iterator[Batch]:
    ids: list[Any] = []
    vectors: list[list[float]] = []
    metas: list[dict | None] = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                ids.append(obj["id"])
                vectors.append(obj["vector"])
                metas.append(obj.get("metadata"))
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInputError(f"{path}:{line_no}: expected {{'id', 'vector', 'metadata'?}}: {exc}") from None
            if len(ids) == batch_size:
                yield ids, _as_array(vectors, path), metas
                ids, vectors, metas = [], [], []
    if ids:
        yield ids, _as_array(vectors, path), metas


def _as_array(vectors: list, path: Path) -> np.ndarray:
    try:
        return np.array(vectors, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path}: vectors must be lists of numbers of one length: {exc}") from None


def _parse_id(text: str) -> Any:
    return int(text) if text.lstrip("-").isdigit() else text


def _parse_scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
