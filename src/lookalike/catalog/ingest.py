"""Ingest a catalog into a collection: batched, resumable, and tolerant of bad images.

Each batch is embedded and then written in one transaction, so an interrupted run loses at most the batch in
flight, and a rerun skips every id already stored (``Collection.has``).  An unreadable or corrupt image is
skipped with a warning and counted; the run goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..embed.base import space_of
from ..errors import EmbedderMismatchError, InvalidInputError
from .sources import Item

log = logging.getLogger(__name__)
FILTER_KEYS = ("class", "colour", "product_type_name", "split")


@dataclass
class IngestReport:
    added: int = 0
    skipped_existing: int = 0
    unreadable: int = 0
    seconds: float = 0.0
    unreadable_ids: list[str] = field(default_factory=list)

    @property
    def items_per_s(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (f"added {self.added}, already stored {self.skipped_existing}, unreadable {self.unreadable} "
                f"in {self.seconds:.1f}s ({self.items_per_s:.0f} items/s)")


def catalog_collection(db, name: str, embedder):
    """The collection for a catalog embedded by ``embedder``: created with its dim, metric cosine and its name
    recorded, or reopened after checking it was made by the same embedder."""
    if name in db:
        col = db.get_collection(name)
        check_embedder(col, embedder)
        return col
    col = db.create_collection(name, dim=embedder.dim, metric="cosine", embedder=embedder.name)
    for key in FILTER_KEYS:  # the page filters on these: index them
        col.create_metadata_index(key)
    return col


def check_embedder(col, embedder) -> None:
    """``embedder`` writes the collection's space: same name, or another text route of it ("minilm-fmnist" and
    "minilm-fmnist+use-m" embed images identically)."""
    if space_of(col.embedder or "") != embedder.space or col.dim != embedder.dim:
        raise EmbedderMismatchError(
            f"collection {col.name!r} was made by embedder {col.embedder!r} ({col.dim} dims); "
            f"{embedder.name!r} gives {embedder.dim} dims: query it with {col.embedder!r} or ingest into a new collection"
        )


def ingest(col, items: Iterable[Item], embedder, *, batch_size: int = 256, progress: bool = True,
           total: int | None = None) -> IngestReport:
    """Embed the images of ``items`` and add them to ``col``; returns what happened."""
    from tqdm import tqdm

    from ..embed.base import UnreadableImageError

    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    check_embedder(col, embedder)
    report = IngestReport()
    t0 = time.perf_counter()
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    with tqdm(total=total, unit="item", desc=f"ingest {col.name}", disable=not progress or None) as bar:
        for batch in _batches(iter(items), batch_size):
            stored = col.has([item.id for item in batch])
            fresh = [item for item, known in zip(batch, stored) if not known]
            report.skipped_existing += len(batch) - len(fresh)
            ids, metas, images = [], [], []
            for item in fresh:
                try:
                    images.append(item.load_image())
                except UnreadableImageError as exc:
                    log.warning("skipping %s: %s", item.id, exc)
                    report.unreadable += 1
                    report.unreadable_ids.append(item.id)
                    continue
                ids.append(item.id)
                metas.append(item.metadata)
            if ids:
                col.add(ids, embedder.embed_images(images), metas)
                report.added += len(ids)
            bar.update(len(batch))
    report.seconds = time.perf_counter() - t0
    if report.unreadable:
        log.warning("%d unreadable image(s) skipped, first: %s", report.unreadable, report.unreadable_ids[:5])
    return report


def _batches(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = ["IngestReport", "catalog_collection", "check_embedder", "ingest"]
