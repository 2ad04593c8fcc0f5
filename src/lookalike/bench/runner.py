"""The runner: build each index once per build combination, then sweep its query arguments.

For each query setting: a warm-up (Numba compiles on first call, caches fill), then ``runs`` timed passes over all
queries; the best pass is kept, as ann-benchmarks keeps ``best_search_time``.  In single-query mode every query is
one call and timed on its own (latency percentiles come from the best pass); in batch mode the whole query set is
one call.  Recall is computed from the answers of the last pass.  Build time, index size on disk (save() to a temp
dir, after the sweep) and resident-memory growth are measured once per build; a small untimed twin of each
lookalike index is built first, so Numba's compile / cache-load time is not counted as build time.
"""

from __future__ import annotations

import gc
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import LookalikeError
from .algorithms import AlgorithmUnavailable, BenchAlgorithm, availability, library_versions, make_algorithm
from .datasets import Dataset
from .definitions import Definition
from .groundtruth import GroundTruth
from .measures import DEFAULT_EPSILON, knn_recall, latency_percentiles
from .results import BenchResult, RunRecord

MODES = ("single", "batch")
WARM_UP_POINTS = 2_000  # size of the untimed twin built to warm a lookalike index type up


@dataclass
class RunSettings:
    k: int = 10
    runs: int = 3  # timed passes per query setting; the best is kept
    mode: str = "single"  # "single": one query per call; "batch": all queries in one call
    threads: int = 1
    warmup: int = 50  # queries answered, untimed, before the timed passes
    epsilon: float = DEFAULT_EPSILON
    seed: int = 0
    sweep: str = "quick"
    measure_size: bool = True
    measure_memory: bool = True


def _rss_bytes() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def _apply_threads(threads: int) -> int | None:
    """Set lookalike's thread count (Numba + BLAS); returns the previous one to restore."""
    from .._threads import get_num_threads, set_num_threads

    previous = get_num_threads()
    set_num_threads(threads)
    return previous


class Runner:
    def __init__(self, dataset: Dataset, truth: GroundTruth, settings: RunSettings, progress: bool = True,
                 log: Callable[[str], None] | None = None):
        self.dataset, self.truth, self.settings = dataset, truth, settings
        self.progress = progress
        self._log = log
        self._bar = None

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
        elif self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    # ------------------------------------------------------------------ whole benchmark
    def run(self, definitions: list[Definition]) -> BenchResult:
        from tqdm import tqdm

        started = time.perf_counter()
        result = BenchResult(dataset=self._dataset_info(), settings=self._settings_info(),
                             environment=environment_info(),
                             created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        runnable = []
        for definition in definitions:
            why = availability(definition)
            if why is None:
                runnable.append(definition)
            else:
                result.skipped.append({"algorithm": definition.name, "reason": why})
                self.log(f"skip {definition.name}: {why}")
        previous_threads = _apply_threads(self.settings.threads)
        self._bar = tqdm(total=sum(d.n_points for d in runnable), unit="point", desc="bench", disable=not self.progress,
                         file=sys.stderr, dynamic_ncols=True)
        try:
            for definition in runnable:
                self._warm_up_build(definition)
                for build_args in definition.build_grid():
                    self._bar.set_postfix_str(f"{definition.name} {build_args}", refresh=True)
                    result.runs.extend(self._run_build(definition, build_args, result.skipped))
        finally:
            self._bar.close()
            self._bar = None
            if previous_threads is not None:
                _apply_threads(previous_threads)
        result.elapsed_s = time.perf_counter() - started
        return result

    # ------------------------------------------------------------------ one build, its query sweep
    def _run_build(self, definition: Definition, build_args: dict[str, Any], skipped: list) -> list[RunRecord]:
        n_query_points = len(definition.query_grid())
        try:
            algo, build_time, memory = self._build(definition, build_args)
        except (AlgorithmUnavailable, LookalikeError, ValueError, RuntimeError, TypeError) as exc:
            self._skip(skipped, definition.name, build_args, None, f"build failed: {exc}")
            self._bar.update(n_query_points)
            return []
        records = []
        try:
            for query_args in definition.query_grid():
                try:
                    records.append(self._run_queries(definition, algo, build_args, query_args, build_time, memory))
                except (LookalikeError, ValueError, RuntimeError, TypeError) as exc:
                    self._skip(skipped, definition.name, build_args, query_args, f"query failed: {exc}")
                self._bar.update(1)
            if self.settings.measure_size and records:
                size = self._index_size(algo)
                for record in records:
                    record.index_size_bytes = size
        finally:
            algo.done()
            del algo
            gc.collect()
        return records

    def _skip(self, skipped: list, name: str, build_args, query_args, reason: str) -> None:
        where = ", ".join(f"{k}={v}" for k, v in {**(build_args or {}), **(query_args or {})}.items())
        reason = f"{reason} ({where})" if where else reason
        skipped.append({"algorithm": name, "reason": reason})
        self.log(f"skip {name}: {reason}")

    def _warm_up_build(self, definition: Definition) -> None:
        """Build and query a small twin of a lookalike index once, untimed, so that Numba's one-time costs
        (compiling, or loading its on-disk cache) land neither in the build time nor in the memory growth."""
        if definition.library != "lookalike":
            return
        sample = self.dataset.train[: min(len(self.dataset.train), WARM_UP_POINTS)]
        try:
            algo = make_algorithm(definition, definition.build_grid()[0], self.dataset.dim, self.dataset.metric,
                                  self.settings.threads, self.settings.seed)
            algo.fit(sample)
            algo.set_query_arguments(**definition.query_grid()[0])
            algo.batch_query(self.dataset.test[:2], self.settings.k)
            algo.query(self.dataset.test[0], self.settings.k)
            algo.done()
        except Exception:  # noqa: BLE001 - only a warm-up: the real build reports its own errors
            pass

    def _build(self, definition: Definition, build_args: dict[str, Any]) -> tuple[BenchAlgorithm, float, int | None]:
        s = self.settings
        gc.collect()
        rss_before = _rss_bytes() if s.measure_memory else None
        start = time.perf_counter()
        algo = make_algorithm(definition, build_args, self.dataset.dim, self.dataset.metric, s.threads, s.seed)
        algo.fit(self.dataset.train)
        build_time = time.perf_counter() - start
        rss_after = _rss_bytes() if s.measure_memory else None
        memory = None if rss_before is None or rss_after is None else max(rss_after - rss_before, 0)
        return algo, build_time, memory

    def _index_size(self, algo: BenchAlgorithm) -> int | None:
        with tempfile.TemporaryDirectory(prefix="lookalike-bench-") as tmp:
            try:
                return int(algo.save(Path(tmp)))
            except (NotImplementedError, OSError, RuntimeError) as exc:
                self.log(f"index size not measured: {exc}")
                return None

    def _run_queries(self, definition: Definition, algo: BenchAlgorithm, build_args: dict[str, Any],
                     query_args: dict[str, Any], build_time: float, memory: int | None) -> RunRecord:
        s = self.settings
        queries = self.dataset.test
        algo.set_query_arguments(**query_args)
        self._answer(algo, queries[: max(1, min(s.warmup, len(queries)))])  # warm-up, untimed
        best_total, best_latencies, answers, distance_count = np.inf, None, None, None
        for _ in range(s.runs):
            algo.reset_counters()
            answers, total, latencies = self._answer(algo, queries)
            if total < best_total:
                best_total, best_latencies = total, latencies
            distance_count = algo.distance_computations()
        recall = knn_recall(answers, self.truth.neighbors, queries, self.dataset.train, self.dataset.metric, s.k,
                            s.epsilon)
        per_query = best_total / len(queries)
        return RunRecord(
            algorithm=definition.name, library=definition.library, index=definition.index, build_args=dict(build_args),
            query_args=dict(query_args), recall=float(recall.mean()), qps=float(1.0 / per_query),
            best_search_time_s=float(per_query), build_time_s=float(build_time),
            latency_ms=None if best_latencies is None else latency_percentiles(best_latencies),
            memory_bytes=memory,
            distance_computations=None if distance_count is None else distance_count / len(queries),
            n_queries=len(queries),
        )

    def _answer(self, algo: BenchAlgorithm, queries: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
        """(answers (q, k) padded -1, total seconds, per-query seconds in single mode else None)."""
        k = self.settings.k
        if self.settings.mode == "batch":
            start = time.perf_counter()
            ids = algo.batch_query(queries, k)
            return np.asarray(ids), time.perf_counter() - start, None
        answers = np.full((len(queries), k), -1, dtype=np.int64)
        latencies = np.empty(len(queries))
        clock = time.perf_counter
        for i, query in enumerate(queries):
            start = clock()
            ids = algo.query(query, k)
            latencies[i] = clock() - start
            ids = np.asarray(ids)
            if ids.ndim != 1 or len(ids) > k:
                raise RuntimeError(f"{type(algo).__name__}.query answered shape {ids.shape}, expected at most ({k},)")
            answers[i, : len(ids)] = ids
        return answers, float(latencies.sum()), latencies

    # ------------------------------------------------------------------ descriptions
    def _dataset_info(self) -> dict[str, Any]:
        ds = self.dataset
        return {"name": ds.name, "source": ds.source, "metric": ds.metric, "distance": ds.distance,
                "n_train": len(ds.train), "n_test": len(ds.test), "dim": ds.dim, "ground_truth": self.truth.source}

    def _settings_info(self) -> dict[str, Any]:
        s = self.settings
        return {"k": s.k, "runs": s.runs, "mode": s.mode, "threads": s.threads, "warmup": s.warmup,
                "epsilon": s.epsilon, "sweep": s.sweep, "seed": s.seed}


def environment_info() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "versions": library_versions()}


def run_benchmark(dataset: Dataset, truth: GroundTruth, definitions: list[Definition], settings: RunSettings,
                  progress: bool = True, log: Callable[[str], None] | None = None) -> BenchResult:
    """Run every definition on ``dataset`` and gather the points in a BenchResult."""
    return Runner(dataset, truth, settings, progress, log).run(definitions)
