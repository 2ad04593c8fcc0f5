"""`lookalike bench --preset NAME`: the named comparisons (what bench_core.py, bench_hnsw.py and bench_lsh_rpf.py
measured) run through the harness, one result file per run and mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.bench.algorithms import NumpyAlgorithm
from lookalike.bench.presets import load_preset, preset_names
from lookalike.cli import main
from lookalike.errors import InvalidParameterError
from lookalike.index.flat import FlatIndex

ROOT = Path(__file__).resolve().parents[2]


def test_every_preset_loads_with_known_algorithms():
    assert preset_names() == ["core", "hnsw", "trees"]
    for name in preset_names():
        preset = load_preset(name)
        assert preset.description and preset.runs and preset.definitions
        assert all(run.dataset and run.modes for run in preset.runs)
    with pytest.raises(InvalidParameterError, match="no preset"):
        load_preset("nope")


@pytest.mark.parametrize("name, results", [("core", 4), ("hnsw", 2), ("trees", 2)])
def test_a_preset_runs_each_of_its_runs_and_modes_on_a_smaller_set(tmp_path, name, results):
    assert main(["bench", "--preset", name, "-d", "synthetic:2000:16", "--queries", "20", "--runs", "1",
                 "--warmup", "2", "--no-plot", "--no-progress", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == results
    for file in files:
        result = json.loads(file.read_text())
        assert result["runs"] and all(0.0 <= run["recall"] <= 1.0 for run in result["runs"])
    if name == "core":  # exact search: every system agrees with the ground truth
        exact = [run for file in files for run in json.loads(file.read_text())["runs"]
                 if run["algorithm"] in ("lookalike-flat", "numpy", "faiss-flat")]
        assert {run["algorithm"] for run in exact} >= {"lookalike-flat", "numpy"}
        assert all(run["recall"] == 1.0 for run in exact)
        product = [run for file in files for run in json.loads(file.read_text())["runs"]
                   if run["algorithm"] == "blas-product"]
        assert len(product) == 2 and all(run["recall"] == 0.0 and run["qps"] > 0 for run in product)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_the_numpy_baseline_finds_the_exact_neighbours(metric):
    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(500, 12)).astype(np.float32), rng.normal(size=(7, 12)).astype(np.float32)
    numpy = NumpyAlgorithm(12, metric, {})
    numpy.fit(x)
    flat = FlatIndex(12, metric)
    flat.add(x)
    assert np.array_equal(numpy.batch_query(q, 5), flat.search(q, 5).ids)
    assert np.array_equal(numpy.query(q[0], 5), flat.search(q[:1], 5).ids[0])


def test_the_old_script_is_a_thin_caller(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_hnsw.py"), "-d", "synthetic:1000:8",
                           "--queries", "10", "--runs", "1", "--warmup", "1", "-a", "lookalike-hnsw", "--no-plot",
                           "--no-progress", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list(tmp_path.glob("*.json"))) == 2  # single and batch
