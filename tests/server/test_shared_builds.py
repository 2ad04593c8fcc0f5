"""Server processes over one database (`lookalike serve --workers N`) share each collection's build status: a build
run by one is reported by all, a second build or a drop is refused by any while it runs, and a build whose process
ended first is reported failed.  Two apps stand for two processes here; the other process holding the build lock is
a real one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from lookalike.server import create_app
from lookalike.server.builds import LOCK_FILE, STATUS_FILE

from .conftest import assert_error
from .support import API_KEY

KEY = {"X-API-Key": API_KEY}
INDEX = "/api/collections/items/index"
HOLD_LOCK = """
import fcntl, sys
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture()
def two_processes(items_db, tmp_path):
    """Two apps over a copy of the items database, each as one server process of ``--workers 2`` would run it."""
    import shutil

    path = tmp_path / "db"
    shutil.copytree(items_db, path)
    with TestClient(create_app(path, api_key=API_KEY)) as first:
        with TestClient(create_app(path, api_key=API_KEY)) as second:
            yield path, first, second


def test_a_build_done_through_one_process_is_reported_by_the_other(two_processes):
    _, first, second = two_processes
    done = first.post(INDEX, headers=KEY, json={"type": "ivf", "params": {"nlist": 4}, "wait": True}).json()
    assert done["state"] == "done"
    seen = second.get(INDEX).json()
    assert seen["state"] == "done" and seen["started_at"] == done["started_at"] and seen["type"] == "ivf"
    assert "ivf" in seen["indexes"]  # the other process's collection caught up with the new index


def test_while_another_process_builds_every_process_says_so_and_refuses_a_second(two_processes):
    path, first, second = two_processes
    directory = path / "collections" / "items"
    status = {"state": "building", "type": "hnsw", "params": {"M": 8}, "started_at": "2026-12-03T05:00:00.000+00:00"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(directory / LOCK_FILE)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (directory / STATUS_FILE).write_text(json.dumps(status))  # as the building process publishes it
        for app in (first, second):
            seen = app.get(INDEX).json()
            assert seen["state"] == "building" and seen["type"] == "hnsw"
            assert_error(app.post(INDEX, headers=KEY, json={"type": "ivf", "params": {"nlist": 4}}),
                         409, "BuildInProgressError")
            assert_error(app.post("/api/collections/items/drop", headers=KEY), 409, "BuildInProgressError")
    finally:
        holder.communicate("go\n")  # the process ends: its lock goes with it
    seen = second.get(INDEX).json()  # "building" still published, but nobody holds the lock
    assert seen["state"] == "failed" and seen["error"]["type"] == "BuildAbandoned"
    started = second.post(INDEX, headers=KEY, json={"type": "ivf", "params": {"nlist": 4}, "wait": True})
    assert started.json()["state"] == "done"  # the lock is free: a new build goes ahead
