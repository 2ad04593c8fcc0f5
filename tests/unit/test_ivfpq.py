"""IVFPQIndex and the product-quantization kernels, against NumPy references and exact search."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike import IVFPQIndex
from lookalike.errors import InvalidParameterError
from lookalike.index.flat import FlatIndex
from lookalike.kernels.pq import decode, encode, train_codebooks, train_rotation
from tests.conftest import clustered

DIM = 32


@pytest.fixture(scope="module")
def data():
    x = clustered(4000, DIM, 20, seed=1)
    q = clustered(100, DIM, 20, seed=2)
    return x, q


def recall(got, truth):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(got.ids.tolist(), truth.ids.tolist())])


def exact(x, q, metric, k=10):
    flat = FlatIndex(DIM, metric)
    flat.add(x)
    return flat.search(q, k)


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_reranked_search_reaches_exact_recall(data, metric):
    x, q = data
    index = IVFPQIndex(DIM, metric, nlist=16, m=8)
    index.add(x)
    truth = exact(x, q, metric)
    assert recall(index.search(q, 10, nprobe=16, rerank=20), truth) >= 0.97
    # more candidates re-ranked never lose a neighbour a smaller re-rank found (same candidate order)
    assert recall(index.search(q, 10, nprobe=16, rerank=8), truth) <= recall(
        index.search(q, 10, nprobe=16, rerank=20), truth) + 1e-9


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_without_rerank_the_scores_are_the_decoded_vectors_distances(data, metric):
    """rerank=0: the kernel's asymmetric distances equal brute force over the decoded vectors (c + r R^T)."""
    x, q = data
    index = IVFPQIndex(DIM, metric, nlist=8, m=4, opq=True)
    index.add(x)
    offsets, rows, codes = index._lists.packed()
    list_of_slot = np.repeat(np.arange(index.trained_nlist), np.diff(offsets))
    decoded = index.centroids[list_of_slot] + decode(codes[:, : index.m], index.codebooks) @ index.rotation.T
    got = index.search(q, 5, nprobe=index.trained_nlist, rerank=0)
    qp = q / np.linalg.norm(q, axis=1, keepdims=True) if metric == "cosine" else q
    if metric == "l2":
        scores = ((qp[:, None, :] - decoded[None]) ** 2).sum(-1)
        want = np.sqrt(np.sort(scores, axis=1)[:, :5])
    else:  # unit vectors, scanned in the L2 form and reported as cosine distance 1 - <q, x>
        scores = ((qp[:, None, :] - decoded[None]) ** 2).sum(-1) / 2
        want = np.sort(scores, axis=1)[:, :5]
    np.testing.assert_allclose(got.distances, want, rtol=1e-4, atol=1e-4)
    best = index.labels[rows[np.argmin(scores, axis=1)]]
    assert (got.ids[:, 0] == best).mean() >= 0.95  # ties aside, the same nearest code


def test_codebooks_encode_to_the_nearest_codeword():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    codebooks = train_codebooks(x, 4, 16)
    assert codebooks.shape == (4, 16, 4)
    codes = encode(x, codebooks)
    for j in range(4):
        sub = x[:, 4 * j : 4 * j + 4]
        nearest = ((sub[:, None, :] - codebooks[j][None]) ** 2).sum(-1).argmin(1)
        np.testing.assert_array_equal(codes[:, j], nearest)
    error = ((decode(codes, codebooks) - x) ** 2).sum(1).mean()
    assert error < 0.6 * (x**2).sum(1).mean()  # 16 codewords per 4-d sub-space explain much of the variance


def test_opq_rotation_is_orthogonal_and_lowers_the_error_on_correlated_data():
    rng = np.random.default_rng(3)
    mixing = rng.standard_normal((16, 16))
    x = (rng.standard_normal((3000, 16)) * np.linspace(3, 0.1, 16)) @ mixing  # correlated, unbalanced
    x = x.astype(np.float32)
    rotation = train_rotation(x, 4, 16)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(16), atol=1e-4)

    def error(y):
        codebooks = train_codebooks(y, 4, 16)
        return ((decode(encode(y, codebooks), codebooks) - y) ** 2).sum(1).mean()

    assert error(x @ rotation) < error(x)


def test_files_hold_codes_not_floats_when_attached(tmp_path, data):
    """Beside a vector source (a collection's store) the index saves codes and rows: a few bytes per vector."""
    x, _ = data
    source = FlatIndex(DIM, "l2")
    source.add(x)
    index = IVFPQIndex(DIM, "l2", nlist=16, m=8)
    index.attach(source)
    index.add(None, source.labels)
    index.save(tmp_path / "pq")
    size = sum(f.stat().st_size for f in (tmp_path / "pq").iterdir())
    codes_and_rows = len(x) * (8 + 4 + 8 + 1)  # code, decoded norm, row, live flag
    assert size < codes_and_rows + 64 * 1024  # + centroids, codebooks and headers
    loaded = IVFPQIndex.load(tmp_path / "pq", source=source)
    q = x[:20]
    np.testing.assert_array_equal(loaded.search(q, 5).ids, index.search(q, 5).ids)


@pytest.mark.parametrize("params", [{"m": 5}, {"m": 0}, {"nbits": 9}, {"nbits": 0}, {"opq": "yes"}, {"nlist": 0}])
def test_bad_build_parameters_raise(params):
    with pytest.raises(InvalidParameterError):
        IVFPQIndex(DIM, **{"m": 8, **params})


@pytest.mark.parametrize("rerank", [-1, 1.5, "4"])
def test_bad_rerank_raises(data, rerank):
    x, q = data
    index = IVFPQIndex(DIM, nlist=4, m=4)
    index.add(x[:500])
    with pytest.raises(InvalidParameterError):
        index.search(q, 3, rerank=rerank)


def test_fewer_bits_use_fewer_codewords(data):
    x, q = data
    index = IVFPQIndex(DIM, nlist=4, m=8, nbits=4)
    index.add(x)
    assert index.codebooks.shape == (8, 16, 4)
    assert int(index._lists.packed()[2][:, :8].max()) < 16
    assert recall(index.search(q, 10, nprobe=4, rerank=50), exact(x, q, "l2")) >= 0.95
