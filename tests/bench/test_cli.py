"""End to end through ``run_bench``, the adapters on tiny data, and the runner's skip paths."""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest

from lookalike.bench.algorithms import make_algorithm
from lookalike.bench.cli import add_bench_arguments, run_bench
from lookalike.bench.datasets import synthetic
from lookalike.bench.definitions import Definition
from lookalike.bench.groundtruth import ground_truth
from lookalike.bench.results import BenchResult
from lookalike.bench.runner import RunSettings, run_benchmark

pytestmark = pytest.mark.unit


def _bench(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lookalike bench")
    add_bench_arguments(parser)
    return run_bench(parser.parse_args(list(argv)))


def _tiny(tmp_path, *extra: str) -> int:
    return _bench("--dataset", "synthetic:400:8:4", "--queries", "25", "--runs", "1", "--warmup", "3", "-k", "5",
                  "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--no-progress", *extra)


def test_end_to_end_tiny_run(tmp_path, capsys):
    assert _tiny(tmp_path, "--algorithms", "flat") == 0
    out = capsys.readouterr().out
    assert "lookalike-flat" in out and "result:" in out
    [json_file] = (tmp_path / "out").glob("*.json")
    result = BenchResult.load(json_file)
    flat = [r for r in result.runs if r.algorithm == "lookalike-flat"]
    assert len(flat) == 1 and flat[0].recall == pytest.approx(1.0)
    assert flat[0].qps > 0 and flat[0].latency_ms["p50"] <= flat[0].latency_ms["p99"]
    assert flat[0].index_size_bytes > 400 * 8 * 4  # at least the raw vectors
    assert flat[0].distance_computations == 400
    assert result.dataset["n_test"] == 25 and result.settings["k"] == 5 and result.settings["threads"] == 1
    png = json_file.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and json_file.with_suffix(".svg").exists()
    # the table and the plots again, from the file
    assert _bench("--show", str(json_file), "--no-plot") == 0
    assert "lookalike-flat" in capsys.readouterr().out


def test_batch_mode_without_plot(tmp_path):
    assert _tiny(tmp_path, "-a", "lookalike-*", "--batch", "--threads", "1", "--no-plot") == 0
    [json_file] = (tmp_path / "out").glob("*.json")
    data = json.loads(json_file.read_text())
    assert data["settings"]["mode"] == "batch"
    assert {r["algorithm"] for r in data["runs"]} >= {"lookalike-flat"}
    assert all(r["latency_ms"] is None for r in data["runs"])
    assert not list((tmp_path / "out").glob("*.png"))


def test_list_and_bad_input(tmp_path, capsys):
    assert _bench("--list") == 0
    assert "lookalike-flat" in capsys.readouterr().out
    assert _tiny(tmp_path, "-a", "no-such-algorithm") == 2
    assert _tiny(tmp_path, "--k", "0") == 2
    assert _bench("--dataset", str(tmp_path / "missing.hdf5"), "--cache-dir", str(tmp_path)) == 2
    assert "lookalike bench:" in capsys.readouterr().err


def test_runner_skips_what_cannot_run(tmp_path):
    data = synthetic(200, 4, 2, 10, seed=0)
    truth = ground_truth(data, 3, tmp_path)
    definitions = [
        Definition("lookalike-flat", "lookalike", "flat"),
        Definition("bad-build", "lookalike", "flat", build={"nlist": [4]}),  # flat has no build parameter
        Definition("bad-query", "lookalike", "flat", query={"ef": [10]}),  # nor query parameter
        Definition("not-written", "lookalike", "no-such-type"),
    ]
    settings = RunSettings(k=3, runs=1, warmup=1, measure_memory=False)
    result = run_benchmark(data, truth, definitions, settings, progress=False, log=lambda message: None)
    assert [r.algorithm for r in result.runs] == ["lookalike-flat"]
    reasons = {s["algorithm"]: s["reason"] for s in result.skipped}
    assert set(reasons) == {"bad-build", "bad-query", "not-written"}
    assert "build failed" in reasons["bad-build"] and "query failed" in reasons["bad-query"]


PEERS = [
    ("faiss", "Flat", {}, {}),
    ("faiss", "IVFFlat", {"nlist": 4}, {"nprobe": 4}),
    ("faiss", "HNSWFlat", {"M": 8, "ef_construction": 40}, {"ef": 64}),
    ("hnswlib", None, {"M": 8, "ef_construction": 40}, {"ef": 64}),
    ("annoy", None, {"n_trees": 8}, {"search_k": 5000}),
]


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
@pytest.mark.parametrize("library,kind,build,query", PEERS)
def test_peer_adapters_find_the_neighbours(library, kind, build, query, metric, tmp_path):
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    from lookalike.bench.measures import knn_recall

    data = synthetic(300, 8, 3, 12, seed=1, metric=metric)
    truth = ground_truth(data, 5, tmp_path)
    algo = make_algorithm(Definition("peer", library, kind), build, 8, data.metric)
    algo.fit(data.train)
    algo.set_query_arguments(**query)
    batch = algo.batch_query(data.test, 5)
    single = np.array([algo.query(q, 5) for q in data.test])
    floor = 0.6 if library == "annoy" and metric == "dot" else 0.9  # annoy's dot is approximate by design
    assert knn_recall(batch, truth.neighbors, data.test, data.train, data.metric, 5).mean() >= floor
    assert knn_recall(single, truth.neighbors, data.test, data.train, data.metric, 5).mean() >= floor
    assert algo.save(tmp_path) > 0
