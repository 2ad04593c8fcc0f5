"""GET /metrics: Prometheus' text format, counting what the server did; scraped by a real Prometheus server (Debian's
`prometheus`), and shared by the processes of `lookalike serve --workers 2`."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import numpy as np
import pytest

from .conftest import serve
from .support import API_KEY
from .support import free_port, start_serve_process

pytest.importorskip("prometheus_client")


def scrape(http) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = http.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    import lookalike

    path = tmp_path_factory.mktemp("metrics") / "db"
    rng = np.random.default_rng(5)
    with lookalike.Database(path) as db:
        col = db.create_collection("items", dim=8, metric="cosine")
        col.add(list(range(300)), rng.standard_normal((300, 8)).astype(np.float32))
    running = serve(path)
    with httpx.Client(base_url=running.url, timeout=60) as http:
        yield running, http
    running.stop()


def test_metrics_count_searches_writes_errors_and_builds(metered):
    _, http = metered
    before = scrape(http)
    rng = np.random.default_rng(6)
    for _ in range(3):
        assert http.post("/api/collections/items/search", json={"vector": rng.standard_normal(8).tolist(),
                                                                "k": 5}).status_code == 200
    from lookalike.server.protocol import encode_array

    queries = encode_array(rng.standard_normal((4, 8)).astype(np.float32))
    assert http.post("/api/collections/items/query", json={"vectors": queries, "k": 3}).status_code == 200
    key = {"X-API-Key": API_KEY}
    written = http.post("/api/collections/items/points", headers=key, json={
        "ids": [1000, 1001], "vectors": encode_array(rng.standard_normal((2, 8)).astype(np.float32)),
        "replace": True})
    assert written.status_code == 200, written.text
    assert http.post("/api/collections/items/points/delete", headers=key, json={"ids": [1000]}).status_code == 200
    assert http.get("/api/collections/items/items/99999").status_code == 404
    build = http.post("/api/collections/items/index", headers=key,
                      json={"type": "ivf", "params": {"nlist": 4}, "wait": True})
    assert build.status_code in (200, 202) and build.json()["state"] == "done", build.text
    after = scrape(http)

    searches = "lookalike_searches_total"
    assert value(after, searches, collection="items", index="flat", mode="vector") - \
        value(before, searches, collection="items", index="flat", mode="vector") == 3
    assert value(after, searches, collection="items", index="flat", mode="query") - \
        value(before, searches, collection="items", index="flat", mode="query") == 4
    assert value(after, "lookalike_search_duration_seconds_count", collection="items", index="flat") >= 4
    assert value(after, "lookalike_writes_total", collection="items", op="upsert") == 2
    assert value(after, "lookalike_writes_total", collection="items", op="delete") == 1
    assert value(after, "lookalike_errors_total", type="IdNotFoundError", status="404") >= 1
    assert value(after, "lookalike_index_builds_total", collection="items", index="ivf", outcome="done") == 1
    assert value(after, "lookalike_index_build_duration_seconds_count", collection="items", index="ivf") == 1
    assert value(after, "lookalike_points", collection="items") == 301
    assert ("lookalike_query_log_queue", ()) in after
    # the tail: points written after the build are searched exactly until the background indexer folds them in
    assert http.post("/api/collections/items/points", headers=key, json={
        "ids": [2000], "vectors": encode_array(rng.standard_normal((1, 8)).astype(np.float32))}).status_code == 200
    one = encode_array(rng.standard_normal((1, 8)).astype(np.float32))
    assert http.post("/api/collections/items/query", json={"vectors": one, "k": 3, "index": "ivf"}).status_code == 200
    key_of_tail = ("lookalike_unindexed_points", (("collection", "items"), ("index", "ivf")))
    deadline = time.time() + 30
    while True:
        samples = scrape(http)
        assert key_of_tail in samples and samples[key_of_tail] <= 1
        if samples[key_of_tail] == 0 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert samples[key_of_tail] == 0  # folded in by the background indexer


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus is not installed (apt-get install prometheus)")
def test_a_real_prometheus_scrapes_the_counters(metered, tmp_path):
    running, http = metered
    for _ in range(5):
        http.post("/api/collections/items/search", json={"vector": [0.1] * 8, "k": 3})
    port = free_port()
    target = running.url.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        f"scrape_configs:\n  - job_name: lookalike\n    static_configs:\n      - targets: ['{target}']\n")
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        seen = 0.0
        while time.monotonic() < deadline and seen < 5:
            time.sleep(1)
            assert prometheus.poll() is None, prometheus.communicate()[1][-2000:]
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query",
                                   params={"query": 'sum(lookalike_searches_total{collection="items"})'}, timeout=5)
            except httpx.HTTPError:
                continue
            result = answer.json().get("data", {}).get("result", [])
            seen = float(result[0]["value"][1]) if result else 0.0
        assert seen >= 5, "Prometheus did not see the searches"
        up = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up"}, timeout=5).json()
        assert up["data"]["result"][0]["value"][1] == "1"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


def test_workers_share_one_set_of_counters(tmp_path):
    import lookalike

    path = tmp_path / "db"
    with lookalike.Database(path) as db:
        db.create_collection("items", dim=4, metric="l2").add(list(range(50)), np.eye(4, dtype=np.float32)[
            np.arange(50) % 4] + np.arange(50, dtype=np.float32)[:, None] / 100)
    server, url = start_serve_process(path, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": ""})
    try:
        for i in range(20):  # new connections: the two workers share them
            with httpx.Client(base_url=url, timeout=30) as http:
                assert http.post("/api/collections/items/search", json={"vector": [i, 0, 0, 1], "k": 2}).is_success
        for _ in range(4):  # whichever worker answers the scrape reports all 20
            with httpx.Client(base_url=url, timeout=30) as http:
                samples = scrape(http)
            assert value(samples, "lookalike_searches_total", collection="items", index="flat", mode="vector") == 20
    finally:
        server.terminate()
        server.wait(timeout=30)
