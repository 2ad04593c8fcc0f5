"""Catalog sources: each yields ``Item(id, metadata, load_image)`` in a stable order.

    FashionMNISTSource   the 70,000 Zalando product images (Debian package dataset-fashion-mnist)
    HMSource             the H&M Personalized Fashion layout: images/0xx/0xxxxxxxxx.jpg + articles.csv
    FolderSource         any folder of images, with an optional CSV keyed by file name
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InvalidInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class Item:
    id: str
    metadata: dict[str, Any]
    load_image: Callable[[], Any]  # -> PIL image; may raise UnreadableImageError


class FashionMNISTSource:
    """Items ``train-00000`` .. ``test-09999`` with metadata name, class, split, index and an image reference."""

    name = "fashion-mnist"

    def __init__(self, splits: tuple[str, ...] = ("train", "test"), limit: int | None = None, directory=None):
        from .fashion_mnist import CLASS_NAMES, load_fashion_mnist

        self.splits = splits
        self.limit = limit
        self._data = {s: load_fashion_mnist(s, directory) for s in splits}
        self._classes = CLASS_NAMES

    def __len__(self) -> int:
        return sum(min(len(labels), self.limit or len(labels)) for _, labels in self._data.values())

    def __iter__(self) -> Iterator[Item]:
        from PIL import Image

        for split in self.splits:
            images, labels = self._data[split]
            for i in range(min(len(labels), self.limit or len(labels))):
                cls = self._classes[int(labels[i])]
                yield Item(
                    id=f"{split}-{i:05d}",
                    metadata={"name": f"{cls} #{i}", "class": cls, "split": split, "index": i,
                              "image": f"fashion-mnist:{split}:{i}"},
                    load_image=lambda pixels=images[i]: Image.fromarray(pixels, mode="L"),
                )


class HMSource:
    """The H&M Personalized Fashion Recommendations layout.  Every articles.csv column becomes metadata;
    ``name`` is prod_name and ``class`` is product_type_name, so filters and the page work the same for every
    catalog.  Articles without an image file are skipped (and counted as missing)."""

    name = "hm"

    def __init__(self, root: str | Path, limit: int | None = None):
        self.root = Path(root).resolve()
        self.csv = self.root / "articles.csv"
        if not self.csv.is_file():
            raise InvalidInputError(f"{self.root} is not an H&M catalog: no articles.csv")
        self.limit = limit
        self.missing = 0

    def image_path(self, article_id: str) -> Path:
        article_id = article_id.zfill(10)
        return self.root / "images" / article_id[:3] / f"{article_id}.jpg"

    def __len__(self) -> int:
        with open(self.csv, newline="", encoding="utf-8") as fh:
            n = max(0, sum(1 for _ in fh) - 1)
        return min(n, self.limit or n)

    def __iter__(self) -> Iterator[Item]:
        from ..embed.base import open_image

        with open(self.csv, newline="", encoding="utf-8") as fh:
            for count, row in enumerate(csv.DictReader(fh)):
                if self.limit is not None and count >= self.limit:
                    return
                article_id = (row.get("article_id") or "").strip().zfill(10)
                path = self.image_path(article_id)
                if not path.is_file():
                    self.missing += 1
                    continue
                meta = {k: _scalar(v) for k, v in row.items() if k and v not in (None, "")}
                meta["article_id"] = article_id
                meta.update(name=row.get("prod_name") or article_id, image=str(path))
                if row.get("product_type_name"):
                    meta["class"] = row["product_type_name"]
                if row.get("colour_group_name"):
                    meta["colour"] = row["colour_group_name"]
                yield Item(id=article_id, metadata=meta, load_image=lambda p=path: open_image(p))


class FolderSource:
    """Every image under ``root`` (recursively); its id is the path relative to root.  An optional CSV with a
    ``file`` (or ``filename`` / ``path``) column adds its other columns as metadata."""

    name = "folder"

    def __init__(self, root: str | Path, csv_path: str | Path | None = None, limit: int | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidInputError(f"{root} is not a directory")
        self.limit = limit
        self.extra = _read_csv_by_file(Path(csv_path)) if csv_path else {}
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if limit is not None:
            self.files = self.files[:limit]

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Item]:
        from ..embed.base import open_image

        for path in self.files:
            rel = path.relative_to(self.root).as_posix()
            meta = {"name": path.stem, "image": str(path), "file": rel}
            meta.update(self.extra.get(rel, self.extra.get(path.name, {})))
            yield Item(id=rel, metadata=meta, load_image=lambda p=path: open_image(p))


def _read_csv_by_file(path: Path) -> dict[str, dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        key = next((k for k in ("file", "filename", "path", "image") if k in (reader.fieldnames or [])), None)
        if key is None:
            raise InvalidInputError(f"{path} needs a 'file' column naming each image")
        return {row[key]: {k: _scalar(v) for k, v in row.items() if k != key and v not in (None, "")} for row in reader}


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.isdigit() and not text.startswith("0"):
        return int(text)
    return text
