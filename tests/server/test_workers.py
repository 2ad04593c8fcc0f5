"""`lookalike serve --workers N`: several processes on one port and one database answer as one server would."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from .support import start_serve_process


@pytest.fixture(scope="module")
def workers_db(tmp_path_factory):
    import lookalike

    path = tmp_path_factory.mktemp("workers") / "db"
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    with lookalike.Database(path) as db:
        col = db.create_collection("items", dim=16, metric="cosine")
        col.add([f"item-{i}" for i in range(500)], vectors, [{"n": i} for i in range(500)])
        col.create_index("hnsw", M=8, ef_construction=64)
    return path, vectors


def test_two_workers_answer_like_the_embedded_collection(workers_db):
    import lookalike

    path, vectors = workers_db
    server, url = start_serve_process(path, workers=2)
    try:
        with lookalike.Database(path) as db:
            expected = db.get_collection("items").query(vectors[:40], k=5, ef=64)

        def ask(row: int):
            with lookalike.Client(url) as client:
                return client.get_collection("items").query(vectors[row], k=5, ef=64).ids[0].tolist()

        with ThreadPoolExecutor(4) as pool:  # concurrent requests spread over both workers
            answers = list(pool.map(ask, range(40)))
        assert answers == expected.ids.tolist()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_workers_must_be_auto_or_a_positive_count(workers_db, value, capsys):
    from lookalike.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--db", str(workers_db[0]), "--workers", value])
    assert exit_info.value.code == 2 and "--workers" in capsys.readouterr().err


def test_auto_is_one_process_per_usable_core_at_most_four(monkeypatch):
    from lookalike.server import cli

    for cores, expected in ((1, 1), (2, 2), (3, 3), (4, 4), (64, 4)):
        monkeypatch.setattr(cli, "usable_cores", lambda cores=cores: cores)
        assert cli.resolve_workers("auto") == expected
        assert cli.resolve_workers("auto", sharded=True) == 1  # a sharded database searches in its Ray actors
        assert cli.resolve_workers(3) == 3  # an explicit count is kept


def test_plain_serve_runs_one_process_per_core(workers_db):
    """`lookalike serve` without --workers serves from one process per usable core (here: this machine's), and they
    answer as one server."""
    import os

    import httpx
    import psutil

    from lookalike.server.cli import resolve_workers

    path, vectors = workers_db
    server, url = start_serve_process(path, workers=None)
    try:
        expected = resolve_workers("auto")
        assert expected == min(4, len(os.sched_getaffinity(0)))
        deadline = time.monotonic() + 60
        while len(workers := serving_processes(server.pid)) != (expected if expected > 1 else 0):
            assert time.monotonic() < deadline, workers
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=30) as http:
            answer = http.post("/api/collections/items/query",
                               json={"vectors": vectors[:3].tolist(), "k": 5, "index": "flat"}).json()
        assert [row[0] for row in answer["ids"]] == ["item-0", "item-1", "item-2"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    _, still_running = psutil.wait_procs(workers, timeout=30)  # a stop ends every worker too
    assert still_running == []


def serving_processes(pid: int) -> list:
    """The worker processes under a `lookalike serve` process (uvicorn starts each with multiprocessing's spawn)."""
    import psutil

    return [child for child in psutil.Process(pid).children(recursive=True)
            if "spawn_main" in " ".join(child.cmdline())]


def test_several_workers_are_refused_on_a_sharded_database(tmp_path, capsys):
    """A sharded database is searched in its Ray actors: `--workers 2` is refused before anything starts (`auto`
    serves it from one process)."""
    from lookalike.cli import main
    from lookalike.distributed.layout import MANIFEST

    path = tmp_path / "sharded"
    path.mkdir()
    (path / MANIFEST).write_text("{}")  # only its presence is read before the refusal
    assert main(["serve", "--db", str(path), "--workers", "2"]) == 2
    assert "scales on Ray" in capsys.readouterr().err
