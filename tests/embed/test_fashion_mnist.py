"""The Fashion-MNIST IDX loader: parsing on synthetic bytes, typed errors, and the real files when installed."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from lookalike.catalog.fashion_mnist import (
    CLASS_NAMES,
    DatasetNotFoundError,
    find_fashion_mnist,
    load_fashion_mnist,
    parse_idx,
    read_idx,
)
from lookalike.errors import InvalidParameterError, StorageFormatError

pytestmark = pytest.mark.unit


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(directory, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (directory / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))


def test_parse_idx_round_trip():
    array = np.random.default_rng(0).integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    parsed = parse_idx(idx_bytes(array))
    np.testing.assert_array_equal(parsed, array)
    assert parsed.flags.writeable  # a copy, not a view of the read-only bytes


@pytest.mark.parametrize("raw, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "two zero bytes"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x07", "element type"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated header"),
    (b"\x00\x00", "not an IDX"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x07", "declares shape"),
])
def test_parse_idx_rejects_malformed_data(raw, message):
    with pytest.raises(StorageFormatError, match=message):
        parse_idx(raw)


def test_read_idx_reports_a_corrupt_gzip(tmp_path):
    path = tmp_path / "broken-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8)))[:-6])
    with pytest.raises(StorageFormatError, match="cannot read"):
        read_idx(path)


def test_load_from_a_given_directory(tmp_path):
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_split(tmp_path, rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n), prefix)
    images, labels = load_fashion_mnist("test", directory=tmp_path)
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (4,) and labels.dtype == np.int64


def test_mismatched_image_and_label_files(tmp_path):
    for prefix in ("train", "t10k"):
        write_split(tmp_path, np.zeros((5, 28, 28)), np.zeros(4), prefix)
    with pytest.raises(StorageFormatError, match="image/label pair"):
        load_fashion_mnist("train", directory=tmp_path)


def test_label_out_of_range(tmp_path):
    for prefix in ("train", "t10k"):
        write_split(tmp_path, np.zeros((2, 28, 28)), np.array([0, 10]), prefix)
    with pytest.raises(StorageFormatError, match="10 classes"):
        load_fashion_mnist("train", directory=tmp_path)


def test_missing_files_say_how_to_install_them(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as caught:
        find_fashion_mnist(tmp_path)
    assert isinstance(caught.value, StorageFormatError)


def test_environment_variable_points_to_the_files(tmp_path, monkeypatch):
    for prefix in ("train", "t10k"):
        write_split(tmp_path, np.zeros((1, 28, 28)), np.zeros(1), prefix)
    monkeypatch.setenv("LOOKALIKE_FASHION_MNIST_DIR", str(tmp_path))
    assert find_fashion_mnist() == tmp_path


@pytest.mark.parametrize("split", ["validation", "", None, "TRAIN"])
def test_unknown_split(split):
    with pytest.raises(InvalidParameterError):
        load_fashion_mnist(split)


def test_the_installed_test_split(fmnist_test):
    images, labels = fmnist_test
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [1000] * 10
    assert len(CLASS_NAMES) == 10
    # garments are light on a black background: the border is darker than the centre
    assert images[:, 0, :].mean() < images[:, 10:18, 10:18].mean()
