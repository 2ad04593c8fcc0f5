"""What a lookalike server reports to Prometheus: ``GET /metrics`` in the Prometheus text format.

Counted as requests are served (``prometheus-client`` counters and histograms):

    lookalike_searches_total{collection,index,mode}          searches answered (mode: text, image, vector, item,
                                                              query: one per query vector of POST .../query)
    lookalike_search_duration_seconds{collection,index}      time in the index per search (histogram)
    lookalike_writes_total{collection,op}                    points written: add, upsert, delete
    lookalike_errors_total{type,status}                      error answers, by error type and HTTP status
    lookalike_index_builds_total{collection,index,outcome}   index builds finished: done, failed
    lookalike_index_build_duration_seconds{collection,index} time of each finished build (histogram)

Read from the server's state at each scrape:

    lookalike_points{collection}                             points of each open collection
    lookalike_unindexed_points{collection,index}             the unindexed tail of each loaded index
    lookalike_index_building{collection,index}               1 while a build of that index runs
    lookalike_query_log_queue                                query-log rows waiting for the writer thread

Several processes (``lookalike serve --workers N``) share one set of counters through prometheus-client's
multiprocess mode: ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start,
each process writes its values there, and whichever worker answers a scrape adds them up.  Each app has a registry
of its own, so several apps in one process (the tests) do not collide.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

# (collection, points, index being built or None, {index: unindexed points}) of each open collection; the query
# log's queued rows
CollectionGauges = Callable[[], list[tuple[str, int, str | None, dict[str, int]]]]
QueueLength = Callable[[], int]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SEARCH_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BUILD_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class ServerMetrics:
    """The instruments of one app, and its exposition."""

    def __init__(self, collections: CollectionGauges, queue: QueueLength) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.state_collector = StateCollector(collections, queue)
        r = self.registry
        self.searches = Counter("lookalike_searches", "Searches answered", ["collection", "index", "mode"],
                                registry=r)
        self.search_seconds = Histogram("lookalike_search_duration_seconds", "Time in the index per search",
                                        ["collection", "index"], buckets=SEARCH_BUCKETS, registry=r)
        self.writes = Counter("lookalike_writes", "Points written", ["collection", "op"], registry=r)
        self.errors = Counter("lookalike_errors", "Error answers", ["type", "status"], registry=r)
        self.builds = Counter("lookalike_index_builds", "Index builds finished", ["collection", "index", "outcome"],
                              registry=r)
        self.build_seconds = Histogram("lookalike_index_build_duration_seconds", "Time of each finished build",
                                       ["collection", "index"], buckets=BUILD_BUCKETS, registry=r)
        r.register(self.state_collector)
        self._search_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def searched(self, collection: str, index: str, mode: str, seconds: float, count: int = 1) -> None:
        key = (collection, index, mode)
        children = self._search_children.get(key)
        if children is None:  # labels() takes a lock and builds its key each time: once per label set here
            children = self._search_children[key] = (self.searches.labels(*key),
                                                      self.search_seconds.labels(collection, index))
        children[0].inc(count)
        children[1].observe(seconds)

    def wrote(self, collection: str, op: str, count: int) -> None:
        self.writes.labels(collection, op).inc(count)

    def failed(self, type_name: str, status: int) -> None:
        self.errors.labels(type_name, str(status)).inc()

    def built(self, collection: str, index: str, outcome: str, seconds: float | None) -> None:
        self.builds.labels(collection, index, outcome).inc()
        if seconds is not None:
            self.build_seconds.labels(collection, index).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text of a scrape and its content type; in multiprocess mode the counters of every worker."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not os.environ.get(MULTIPROCESS_ENV):
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self.state_collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class StateCollector:
    """Gauges read from the server's state when Prometheus scrapes (nothing to keep up to date in between)."""

    def __init__(self, collections: CollectionGauges, queue: QueueLength) -> None:
        self.collections = collections
        self.queue = queue

    def describe(self) -> list:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        points = GaugeMetricFamily("lookalike_points", "Points of each open collection", labels=["collection"])
        building = GaugeMetricFamily("lookalike_index_building", "1 while an index build runs",
                                     labels=["collection", "index"])
        tail = GaugeMetricFamily("lookalike_unindexed_points", "Points written since the index last caught up "
                                 "(searched exactly until the background indexer folds them in)",
                                 labels=["collection", "index"])
        for name, count, build, unindexed in self.collections():
            points.add_metric([name], count)
            if build is not None:
                building.add_metric([name, build], 1)
            for index, rows in unindexed.items():
                tail.add_metric([name, index], rows)
        yield points
        yield building
        yield tail
        queue = GaugeMetricFamily("lookalike_query_log_queue", "Query-log rows waiting to be written")
        queue.add_metric([], self.queue())
        yield queue


def prepare_multiprocess(workers: int) -> None:
    """Before ``workers`` > 1 processes start: a fresh directory for their shared counters (prometheus-client's
    multiprocess mode), unless the operator set one."""
    if workers <= 1 or os.environ.get(MULTIPROCESS_ENV):
        return
    import tempfile

    os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="lookalike-metrics-")
