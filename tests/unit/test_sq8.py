"""SQ8: codes against a NumPy reference, recall with re-ranking, memory of the codes, range growth."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.evaluation import evaluate
from lookalike.errors import InvalidParameterError
from lookalike.index import Index
from lookalike.index.sq import SQ8Index
from lookalike.kernels.quantize import decode, encode, scan_codes_serial, train_ranges
from tests.conftest import clustered

pytestmark = pytest.mark.unit


def test_encode_decode_error_is_half_a_step():
    x = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    lo, step = train_ranges(x)
    codes = encode(x, lo, step)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    assert (np.abs(decode(codes, lo, step) - x) <= step / 2 + 1e-5).all()


@pytest.mark.parametrize("is_ip", [True, False])
def test_scan_matches_numpy_on_decoded_vectors(is_ip):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    q = rng.normal(size=(4, 8)).astype(np.float32)
    lo, step = train_ranges(x)
    codes = encode(x, lo, step)
    approx = decode(codes, lo, step)
    want = -(q @ approx.T) if is_ip else ((q[:, None] - approx[None]) ** 2).sum(-1)
    rows = np.full((4, 10), -1, np.int64)
    raw = np.full((4, 10), np.inf, np.float32)
    scan_codes_serial(q, codes, lo, step, is_ip, np.ones(1, bool), False, 10, rows, raw)
    for i in range(4):
        assert set(rows[i]) == set(np.argsort(want[i], kind="stable")[:10])


@pytest.mark.recall
def test_recall_with_rerank_and_memory_of_codes(tmp_path):
    data = clustered(20_000, 64, 100, seed=0)
    queries = clustered(200, 64, 100, seed=1)
    index = SQ8Index(64, "l2")
    index.add(data)
    low = evaluate(index, queries, 10, rerank=1)["recall"]
    high = evaluate(index, queries, 10, rerank=8)["recall"]
    assert high >= 0.95 and high >= low
    assert index._codes.view.nbytes * 4 == index.vectors.nbytes
    index.save(tmp_path / "sq")
    mapped = Index.load(tmp_path / "sq", mmap=True)
    assert not mapped.vectors.flags.owndata  # the float vectors stay on disk; only candidates are read
    np.testing.assert_array_equal(mapped.search(queries, 10).ids, index.search(queries, 10).ids)
    with pytest.raises(InvalidParameterError):
        index.search(queries[0], 10, rerank=0)


def test_points_outside_the_trained_range_widen_it():
    index = SQ8Index(8, "l2")
    index.add(np.random.default_rng(0).normal(size=(100, 8)))
    far = np.full((1, 8), 50.0)
    index.add(far, [1000])
    assert index.search(far, 1).ids[0, 0] == 1000
