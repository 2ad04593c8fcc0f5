"""Ingest at scale with Ray Data: read in parallel, embed on a pool of actors, write to the owning shards.

    ingest_vectors(sdb, "products", "vectors.npy")                 # or a Parquet file / directory
    ingest_images(sdb, "products", "photos/", "minilm-fmnist")     # or a list of image paths

Images go through three stages that Ray Data streams, so reading, embedding and writing overlap::

    read (tasks)      which ids are already stored (asked of their owner shards) -> read the files of the others
    embed (actors)    decode and embed a batch; each actor loads the model once (num_gpus=1 each on a GPU cluster)
    write (tasks)     route each row to its owner shard and add it there

Resumable: a rerun skips every id already stored, before reading or embedding it, so an interrupted run resumes
where it stopped (each written batch is committed on its shard).  Unreadable images are skipped and counted.
Ids, metadata and vectors are the same as ``lookalike.catalog.ingest`` with a ``FolderSource`` gives locally.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import ray

from ..catalog.ingest import IngestReport, catalog_collection
from ..errors import DimensionMismatchError, InvalidInputError
from .routing import group_by_shard

FRESH, STORED, UNREADABLE = 0, 1, 2  # the status of a row through the image pipeline
DEFAULT_VECTOR_BATCH = 4_096
DEFAULT_IMAGE_BATCH = 64
MAX_CPU_EMBEDDERS = 16


def _ray_data_settings(ingest_fn):
    """Run an ingest with Ray Data set as it needs (restored after): a lookalike error raised in a worker (wrong
    dims, a zero vector under cosine, ...) reaches the caller as itself, and Ray Data's per-block progress bars
    give way to ours, which count items."""
    @functools.wraps(ingest_fn)
    def run(*args: Any, **kwargs: Any) -> IngestReport:
        context = ray.data.DataContext.get_current()
        saved = context.raise_original_map_exception, context.enable_progress_bars
        context.raise_original_map_exception, context.enable_progress_bars = True, False
        try:
            return ingest_fn(*args, **kwargs)
        finally:
            context.raise_original_map_exception, context.enable_progress_bars = saved

    return run


# ====================================================================== vectors
@_ray_data_settings
def ingest_vectors(sdb, name: str, source: str | Path | Sequence[str | Path], *, start_id: int = 0,
                   id_column: str = "id", vector_column: str = "vector", metadata_columns: Sequence[str] | None = None,
                   upsert: bool = False, batch_size: int = DEFAULT_VECTOR_BATCH, progress: bool = True) -> IngestReport:
    """Write the vectors of a ``.npy`` file (ids ``start_id + row``) or of Parquet files (ids from ``id_column``,
    vectors from ``vector_column``, the other columns — or ``metadata_columns`` — as metadata) into collection
    ``name``.  Ids already stored are skipped (``upsert=True`` replaces them instead)."""
    col = sdb.get_collection(name)
    # strings stay strings: "s3://bucket/dir" is a URI Ray Data and pyarrow read, not a local Path
    paths = [str(source)] if isinstance(source, (str, Path)) else [str(p) for p in source]
    if len(paths) == 1 and paths[0].lower().endswith(".npy"):
        ds, total = _npy_dataset(Path(paths[0]), col.dim, start_id, batch_size)
    else:
        ds = ray.data.read_parquet(paths)
        ds = ds.map_batches(_parquet_rows, batch_format="pyarrow", batch_size=batch_size,
                            fn_kwargs={"id_column": id_column, "vector_column": vector_column,
                                       "metadata_columns": metadata_columns, "dim": col.dim})
        total = _parquet_rows_count(paths)
    ds = ds.map_batches(_write_rows, batch_size=batch_size,
                        fn_kwargs={"shards": sdb.shards, "name": name, "upsert": upsert})
    return _run(ds, total, f"ingest {name}", progress)


def _npy_dataset(path: Path, dim: int, start_id: int, batch_size: int):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    if array.ndim != 2 or array.shape[1] != dim:
        raise DimensionMismatchError(f"{path} holds an array of shape {array.shape}; the collection takes (n, {dim})")
    blocks = max(1, min(200, len(array) // batch_size))
    rows = ray.data.range(len(array), override_num_blocks=blocks)  # one column "id": the row numbers
    ds = rows.map_batches(_npy_rows, batch_size=batch_size,
                          fn_kwargs={"path": str(path.resolve()), "start_id": int(start_id)})
    return ds, len(array)


def _npy_rows(batch: dict[str, np.ndarray], path: str, start_id: int) -> dict[str, np.ndarray]:
    """Rows of the .npy file, read by the worker through a memory map (the file must be readable on every node)."""
    rows = np.asarray(batch["id"], dtype=np.int64)
    vectors = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False)[rows], dtype=np.float32)
    return {"id": rows + start_id, "vector": vectors}


def _parquet_rows_count(paths: list[str]) -> int:
    import pyarrow.dataset

    source = paths[0] if len(paths) == 1 else paths  # a directory is passed alone
    return pyarrow.dataset.dataset(source, format="parquet").count_rows()  # read from the files' footers


def _parquet_rows(table, id_column: str, vector_column: str, metadata_columns: Sequence[str] | None, dim: int):
    names = table.column_names
    for needed in (id_column, vector_column):
        if needed not in names:
            raise InvalidInputError(f"the Parquet data has no column {needed!r} (columns: {names})")
    meta_names = [c for c in (metadata_columns if metadata_columns is not None else names)
                  if c not in (id_column, vector_column)]
    vectors = np.asarray(table.column(vector_column).to_pylist(), dtype=np.float32).reshape(len(table), -1)
    if vectors.shape[1] != dim:
        raise DimensionMismatchError(f"column {vector_column!r} holds {vectors.shape[1]}-d vectors; the collection "
                                     f"takes {dim}")
    metas = [""] * len(table)  # "" = no metadata
    if meta_names:
        metas = [json.dumps({c: v for c, v in row.items() if v is not None}, default=str)
                 for row in table.select(meta_names).to_pylist()]
    return {"id": np.asarray(table.column(id_column).to_pylist()), "vector": vectors,
            "metadata": np.asarray(metas, dtype=object)}


# ====================================================================== images
@_ray_data_settings
def ingest_images(sdb, name: str, paths_or_folder: str | Path | Sequence[str | Path], embedder: Any, *,
                  csv_path: str | Path | None = None, batch_size: int = DEFAULT_IMAGE_BATCH,
                  concurrency: int | None = None, progress: bool = True, limit: int | None = None) -> IngestReport:
    """Embed images with ``embedder`` (a registered name such as "minilm-fmnist", or an Embedder instance small
    enough to ship to the actors) and write them into collection ``name`` (created with the embedder's dim and name
    when absent).  A folder is read like ``FolderSource``: ids are paths relative to it, an optional CSV adds
    metadata.  ``concurrency`` is the number of embedding actors (default: one per GPU, else CPUs - 1, at most 16)."""
    from ..embed.base import get_embedder

    model = get_embedder(embedder) if isinstance(embedder, str) else embedder
    catalog_collection(sdb, name, model)  # creates it, or checks it was made by this embedder
    records = image_records(paths_or_folder, csv_path, limit)
    if not records:
        raise InvalidInputError(f"no images found in {paths_or_folder}")
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if concurrency is None:  # each actor holds a model: one per GPU, else one per CPU but one, at most 16
        concurrency = gpus or min(MAX_CPU_EMBEDDERS, max(1, int(ray.cluster_resources().get("CPU", 2)) - 1))
    blocks = max(1, min(200, len(records) // batch_size))
    ds = ray.data.from_items(records, override_num_blocks=blocks)
    ds = ds.map_batches(_read_fresh_images, batch_size=batch_size, fn_kwargs={"shards": sdb.shards, "name": name})
    ds = ds.map_batches(_EmbedImages, batch_size=batch_size, fn_constructor_kwargs={"embedder": embedder},
                        compute=ray.data.ActorPoolStrategy(size=concurrency), num_gpus=1 if gpus else 0,
                        num_cpus=0 if gpus else 1)
    ds = ds.map_batches(_write_rows, batch_size=batch_size,
                        fn_kwargs={"shards": sdb.shards, "name": name, "upsert": False})
    return _run(ds, len(records), f"ingest images {name}", progress)


def image_records(paths_or_folder: str | Path | Sequence[str | Path], csv_path: str | Path | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """One ``{"id", "path", "metadata"}`` per image: a folder as ``FolderSource`` lists it, or a list of files with
    ids relative to their common directory (and the same metadata: name, image, file)."""
    from ..catalog.sources import FolderSource

    if isinstance(paths_or_folder, (str, Path)) and Path(paths_or_folder).is_dir():
        items = list(FolderSource(paths_or_folder, csv_path, limit))
        return [{"id": it.id, "path": it.metadata["image"], "metadata": json.dumps(it.metadata)} for it in items]
    if isinstance(paths_or_folder, (str, Path)):
        raise InvalidInputError(f"{paths_or_folder} is not a directory (pass a folder or a list of image paths)")
    files = [Path(p).resolve() for p in paths_or_folder][:limit]
    if not files:
        return []
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    return [{"id": f.relative_to(root).as_posix(), "path": str(f),
             "metadata": json.dumps({"name": f.stem, "image": str(f), "file": f.relative_to(root).as_posix()})}
            for f in files]


def _read_fresh_images(batch: dict[str, np.ndarray], shards: list, name: str) -> dict[str, np.ndarray]:
    """Mark ids already stored (their owner shard says so) and read the bytes of the others."""
    ids = batch["id"].tolist()
    status = np.where(_stored(ids, shards, name), STORED, FRESH).astype(np.int8)
    data = []
    for path, state in zip(batch["path"], status):
        if state == FRESH:
            try:
                data.append(Path(path).read_bytes())
            except OSError:
                data.append(b"")  # decoding will fail and count it as unreadable
        else:
            data.append(b"")
    return {"id": batch["id"], "metadata": batch["metadata"], "status": status,
            "image_bytes": np.asarray(data, dtype=object)}


class _EmbedImages:
    """An embedding actor: loads the embedder once, then decodes and embeds batch after batch."""

    def __init__(self, embedder: Any):
        from ..embed.base import get_embedder

        self.embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..embed.base import UnreadableImageError, open_image

        status = np.asarray(batch["status"], dtype=np.int8).copy()
        vectors = np.zeros((len(status), self.embedder.dim), dtype=np.float32)
        images, rows = [], []
        for i in np.flatnonzero(status == FRESH):
            try:
                images.append(open_image(bytes(batch["image_bytes"][i])))
                rows.append(i)
            except UnreadableImageError:
                status[i] = UNREADABLE
        if images:
            vectors[rows] = self.embedder.embed_images(images)
        return {"id": batch["id"], "metadata": batch["metadata"], "status": status, "vector": vectors}


# ====================================================================== shared stages
def _stored(ids: list, shards: list, name: str) -> np.ndarray:
    flags = np.zeros(len(ids), dtype=bool)
    groups = group_by_shard(ids, len(shards))
    answers = ray.get([shards[s].has.remote(name, [ids[i] for i in pos]) for s, pos in groups.items()])
    for pos, found in zip(groups.values(), answers):
        flags[pos] = found
    return flags


def _write_rows(batch: dict[str, np.ndarray], shards: list, name: str, upsert: bool) -> dict[str, np.ndarray]:
    """Add each fresh row on its owner shard; one output row of counts per batch."""
    ids = batch["id"].tolist()
    status = np.asarray(batch["status"]) if "status" in batch else np.zeros(len(ids), dtype=np.int8)
    if not upsert:  # a resumed run, or a row another writer stored meanwhile
        status = np.where((status == FRESH) & _stored(ids, shards, name), STORED, status)
    fresh = np.flatnonzero(status == FRESH)
    vectors = np.asarray(batch["vector"], dtype=np.float32)
    metas = batch.get("metadata")
    writes = []
    for s, pos in group_by_shard([ids[i] for i in fresh], len(shards)).items():
        rows = fresh[pos]
        meta = None if metas is None else [json.loads(metas[i]) if metas[i] else None for i in rows]
        method = shards[s].upsert if upsert else shards[s].add
        writes.append(method.remote(name, [ids[i] for i in rows], vectors[rows], meta))
    ray.get(writes)
    unreadable = [str(ids[i]) for i in np.flatnonzero(status == UNREADABLE)]
    return {"added": np.array([len(fresh)]), "skipped": np.array([int((status == STORED).sum())]),
            "unreadable": np.array([json.dumps(unreadable)], dtype=object)}


def _run(ds, total: int, description: str, progress: bool) -> IngestReport:
    """Stream the dataset to its end, counting (and showing) what was written."""
    from tqdm import tqdm

    from .sharded import lookalike_cause

    report = IngestReport()
    t0 = time.perf_counter()
    try:
        with tqdm(total=total, unit="item", desc=description, disable=not progress or None) as bar:
            for counts in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for added, skipped, unreadable in zip(counts["added"], counts["skipped"], counts["unreadable"]):
                    lost = json.loads(unreadable)
                    report.added += int(added)
                    report.skipped_existing += int(skipped)
                    report.unreadable += len(lost)
                    report.unreadable_ids.extend(lost)
                    bar.update(int(added) + int(skipped) + len(lost))
    except Exception as exc:  # a lookalike error raised in a worker is the caller's error, not Ray's
        cause = lookalike_cause(exc)
        if cause is None or cause is exc:
            raise
        raise cause from None
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["IngestReport", "image_records", "ingest_images", "ingest_vectors"]
