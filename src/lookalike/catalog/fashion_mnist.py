"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 70,000 28x28 grayscale product images of Zalando articles in 10
classes, 60,000 for training and 10,000 for testing.

The four files are gzipped IDX files (the format of LeCun's MNIST).  An IDX file is a big-endian header followed by
the raw array:

    bytes 0-1   zero
    byte  2     element type (0x08 = unsigned byte)
    byte  3     number of dimensions d
    4*d bytes   the size of each dimension, big-endian uint32
    the data    row-major

The files come from the Debian package ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``), which
puts them under ``/usr/share/datasets/fashion-mnist``.  ``$LOOKALIKE_FASHION_MNIST_DIR`` or the ``directory``
argument points elsewhere (for example at a clone of ``zalandoresearch/fashion-mnist``'s ``data/fashion``).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError, StorageFormatError

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

DEBIAN_PACKAGE = "dataset-fashion-mnist"
KNOWN_DIRECTORIES = (Path("/usr/share/datasets/fashion-mnist"),)
ENV_VARIABLE = "LOOKALIKE_FASHION_MNIST_DIR"

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_UBYTE = 0x08


class DatasetNotFoundError(StorageFormatError):
    """A data set's files are not on this machine (proposed for errors.py, beside StorageFormatError)."""


def load_fashion_mnist(split: str = "train", directory: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` of one split: images uint8 ``(n, 28, 28)`` (light garment on black), labels int64
    ``(n,)`` indexing :data:`CLASS_NAMES`.  ``split`` is ``"train"`` (60,000) or ``"test"`` (10,000)."""
    if split not in _FILES:
        raise InvalidParameterError(f"split must be 'train' or 'test', got {split!r}")
    root = find_fashion_mnist(directory)
    image_file, label_file = (root / name for name in _FILES[split])
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise StorageFormatError(
            f"{image_file.name} {images.shape} and {label_file.name} {labels.shape} do not form an image/label pair"
        )
    if labels.size and int(labels.max()) >= len(CLASS_NAMES):
        raise StorageFormatError(f"{label_file} holds label {int(labels.max())}; Fashion-MNIST has 10 classes")
    return images, labels.astype(np.int64)


def find_fashion_mnist(directory: str | os.PathLike | None = None) -> Path:
    """The directory holding the four ``*-ubyte.gz`` files, or :class:`DatasetNotFoundError` saying how to get them."""
    candidates: list[Path] = []
    if directory is not None:
        candidates.append(Path(directory))
    else:
        if os.environ.get(ENV_VARIABLE):
            candidates.append(Path(os.environ[ENV_VARIABLE]))
        candidates.extend(_directories_from_dpkg())
        candidates.extend(KNOWN_DIRECTORIES)
    needed = [name for pair in _FILES.values() for name in pair]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in needed):
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates)) or "nowhere"
    raise DatasetNotFoundError(
        f"Fashion-MNIST files not found (looked in {looked}): install them with "
        f"`apt-get install {DEBIAN_PACKAGE}`, or set ${ENV_VARIABLE} to a directory holding {', '.join(needed)}"
    )


def _directories_from_dpkg() -> list[Path]:
    """Where dpkg says the Debian package put its IDX files (empty when dpkg or the package is absent)."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return []
    try:
        listing = subprocess.run([dpkg, "-L", DEBIAN_PACKAGE], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if listing.returncode != 0:
        return []
    paths = [Path(line.strip()) for line in listing.stdout.splitlines() if line.strip().endswith("-ubyte.gz")]
    return list(dict.fromkeys(path.parent for path in paths))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one (optionally gzipped) unsigned-byte IDX file into an array of the shape its header declares."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as exc:  # a truncated gzip stream raises EOFError
        raise StorageFormatError(f"cannot read IDX file {path}: {exc}") from None
    return parse_idx(raw, source=str(path))


def parse_idx(raw: bytes, source: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an unsigned-byte IDX file (header described in the module docstring)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise StorageFormatError(f"{source} is not an IDX file: it must start with two zero bytes")
    if raw[2] != _IDX_UBYTE:
        raise StorageFormatError(f"{source} holds element type 0x{raw[2]:02x}; only unsigned bytes (0x08) are read")
    n_dims = raw[3]
    header_size = 4 + 4 * n_dims
    if n_dims == 0 or len(raw) < header_size:
        raise StorageFormatError(f"{source} has a truncated header ({len(raw)} bytes, {n_dims} dims)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=n_dims, offset=4))
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise StorageFormatError(f"{source} declares shape {shape} ({expected} bytes) but holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape).copy()
