"""Result files round-trip, the Pareto table, the recall-QPS plot, and the algorithm definitions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.bench.definitions import Definition, load_definitions, parse_config_file, select
from lookalike.bench.plots import plot_recall_qps
from lookalike.bench.results import SCHEMA_VERSION, BenchResult, RunRecord, format_table
from lookalike.errors import InvalidParameterError, StorageFormatError
from lookalike.index.registry import available

pytestmark = pytest.mark.unit


def _record(algorithm, recall, qps, library="lookalike", **extra):
    return RunRecord(algorithm=algorithm, library=library, index="x", build_args={"M": 16},
                     query_args={"ef": int(qps)}, recall=recall, qps=qps, best_search_time_s=1 / qps,
                     build_time_s=1.5, n_queries=100, **extra)


def _result():
    runs = [
        _record("lookalike-hnsw", 0.80, 9000.0, latency_ms={"p50": 0.1, "p95": 0.2, "p99": 0.3, "mean": 0.12},
                index_size_bytes=12345, memory_bytes=678, distance_computations=321.5),
        _record("lookalike-hnsw", 0.95, 4000.0),
        _record("lookalike-hnsw", 0.90, 3000.0),  # dominated by the 0.95 point
        _record("hnswlib", 0.97, 20000.0, library="hnswlib"),
    ]
    return BenchResult(dataset={"name": "tiny", "n_train": 10, "n_test": 2, "dim": 3, "distance": "angular"},
                       settings={"k": 10, "runs": 3, "mode": "single", "threads": 1}, runs=runs,
                       skipped=[{"algorithm": "annoy", "reason": "annoy is not installed"}], created="2025-01-01")


def test_result_file_round_trips(tmp_path):
    result = _result()
    path = result.save(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "lookalike-bench-result" and data["schema_version"] == SCHEMA_VERSION
    assert data["runs"][0]["latency_ms"]["p99"] == 0.3
    back = BenchResult.load(path)
    assert back == result
    assert BenchResult.from_dict(back.to_dict()) == result


def test_foreign_result_files_are_refused(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(StorageFormatError):
        BenchResult.load(tmp_path / "a.json")
    data = _result().to_dict()
    data["schema_version"] = 99
    with pytest.raises(StorageFormatError):
        BenchResult.from_dict(data)
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(StorageFormatError):
        BenchResult.load(tmp_path / "b.json")


def test_frontier_and_table():
    result = _result()
    assert [r.recall for r in result.frontier("lookalike-hnsw")] == [0.80, 0.95]
    assert [r.algorithm for r in result.frontier()] == ["hnswlib"]  # beats every lookalike point
    table = format_table(result, recall_target=0.9)
    lines = table.splitlines()
    assert any(line.startswith("*") and "hnswlib" in line for line in lines)
    assert not any("ef=3000" in line for line in lines)  # dominated points are left out
    assert "skipped annoy: annoy is not installed" in table
    assert "best QPS at recall >= 0.90" in table


def test_plot_is_a_valid_png_and_svg(tmp_path):
    paths = plot_recall_qps(_result(), tmp_path / "plots" / "r")
    png, svg = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and np.ptp(pixels) > 0  # not a blank image
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_definitions_from_toml(tmp_path):
    (tmp_path / "mine.toml").write_text(
        '[lookalike-flat]\nlibrary = "lookalike"\nindex = "flat"\ndescription = "mine"\n\n'
        '[toy]\nlibrary = "hnswlib"\nbuild = { M = [8, 16], ef_construction = 50 }\nquery = { ef = [10, 20, 40] }\n'
        '[toy.quick]\nquery = { ef = [10] }\n'
    )
    quick = {d.name: d for d in load_definitions(tmp_path, "quick")}
    full = {d.name: d for d in load_definitions(tmp_path, "full")}
    assert quick["lookalike-flat"].description == "mine"  # overrides the built-in one
    assert quick["toy"].build_grid() == [{"M": 8, "ef_construction": 50}, {"M": 16, "ef_construction": 50}]
    assert quick["toy"].query_grid() == [{"ef": 10}] and len(full["toy"].query_grid()) == 3
    assert full["toy"].n_points == 6
    # every index type the registry lists gets a definition, with or without a file
    assert {f"lookalike-{t}" for t in available()} <= set(quick)
    names = list(quick)
    assert names.index("lookalike-flat") < names.index("toy")  # lookalike first


def test_select_by_name_pattern_and_word():
    defs = [Definition("lookalike-hnsw", "lookalike", "hnsw"), Definition("faiss-hnsw", "faiss", "HNSWFlat"),
            Definition("hnswlib", "hnswlib"), Definition("annoy", "annoy")]
    assert [d.name for d in select(defs, "annoy")] == ["annoy"]
    assert [d.name for d in select(defs, "hnsw")] == ["lookalike-hnsw", "faiss-hnsw", "hnswlib"]
    assert [d.name for d in select(defs, "lookalike-*,annoy")] == ["lookalike-hnsw", "annoy"]
    assert select(defs, None) == defs
    with pytest.raises(InvalidParameterError):
        select(defs, "nope")


def test_bad_config_files(tmp_path):
    (tmp_path / "bad.toml").write_text("[x]\nbuild = 3\n")
    with pytest.raises(InvalidParameterError):
        parse_config_file(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text("[x\n")
    with pytest.raises(InvalidParameterError):
        parse_config_file(tmp_path / "bad.toml")
    with pytest.raises(InvalidParameterError):
        load_definitions(tmp_path / "missing")
