"""Index rebuilds while queries keep being served.

A build must not stop the search page, so it never touches the serving ``Collection``:

1. ``POST /index`` checks the type and parameters at once (a bad one answers 400 before anything starts), then a
   worker thread starts a child process (``python -m lookalike.server.build_worker``) that opens the same database
   files, builds the index, saves it and commits its config.  A process, not a thread: Numba kernels hold the GIL
   while they run, so a build in a thread would stall queries for seconds at a time, and a crash or an out-of-memory
   kill of the build cannot take the server with it.
2. Queries go on meanwhile, on the serving object's indexes as they were.  Writes through the API go on too: the
   build replays them from the SQLite change log before it saves.
3. When the child exits, the worker thread opens a fresh ``Collection`` on the same path and warms it (it loads the
   new index files and catches up with writes made since) outside the lock; then the handle swaps it in under the
   lock, in microseconds.  ``GET /index`` reports the state and the build time all along.

Several server processes over one database (``lookalike serve --workers N``) share each collection's build status
(``SharedStatus``): the process running a build holds a lock file beside the collection's files for its whole run,
so no other process starts a second build of it, and writes the status to a JSON file there, which every process
answers ``GET .../index`` from.  A status that says "building" while nobody holds the lock is a build whose
process ended before it did: it is reported failed.

A sharded collection (``lookalike.distributed``) has no files here to build from: its worker thread calls
``create_index(..., online=True)``, which builds in Ray actors beside the shards (over the same shard directories)
while the shards keep answering, then has every shard reload its files.  The thread only waits for that, then warms
the new index and updates the handle; it needs no swap, since the shared collection object stays the same.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidParameterError, LookalikeError
from ..index.registry import from_config
from .errors import BuildInProgressError


class BuildTarget(Protocol):
    """What a build needs of a served collection (``state.CollectionHandle`` is one): named here, so this module
    does not import the state that imports it."""

    name: str
    db_path: Path
    db: Any
    sharded: bool
    building: str | None
    lock: Any

    @property
    def collection(self) -> Any: ...

    def swap(self, db: Any, collection: Any, loaded: set[str]) -> None: ...


class BuildHost(Protocol):
    """What the build manager needs of the server's state (``state.ServerState`` is one)."""

    sharded: bool
    metrics: Any

log = logging.getLogger("lookalike.server")

IDLE, BUILDING, DONE, FAILED = "idle", "building", "done", "failed"
STDERR_TAIL = 2000  # characters of a failed build's stderr kept in its status
SHUTDOWN_WAIT_S = 60.0  # how long shutdown waits for a sharded build (its actors cannot be told to stop midway)
STATUS_FILE = "build-status.json"  # beside a collection's files: its last build's status, for every server process
LOCK_FILE = "build.lock"  # held (flock) by the server process running the collection's build, while it runs


class SharedStatus:
    """One collection's build status as every server process of its database sees it (see the module's text)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._held = None  # the lock file, open, while this process holds it

    def acquire(self) -> bool:
        """Take the build lock; False if another process holds it.  A directory that cannot hold the lock file
        (read only) shares nothing: the build goes on, as it would in a single process."""
        try:
            handle = open(self.directory / LOCK_FILE, "a+")
        except OSError:
            return True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._held = handle
        return True

    def release(self) -> None:
        if self._held is not None:
            self._held.close()  # closing the file releases its lock
            self._held = None

    def held_elsewhere(self) -> bool:
        """Whether another process holds the build lock (a build of this collection runs there)."""
        if self._held is not None:
            return False
        probe = SharedStatus(self.directory)
        if not probe.acquire():
            return True
        probe.release()
        return False

    def write(self, status: dict[str, Any]) -> None:
        """Publish ``status`` (whole: written aside, then renamed over the last)."""
        aside = self.directory / f".{STATUS_FILE}.{os.getpid()}"
        try:
            aside.write_text(json.dumps(status, default=str))
            os.replace(aside, self.directory / STATUS_FILE)
        except OSError as exc:  # a status other processes cannot read; the build itself goes on
            log.warning("could not write the build status of %s: %s", self.directory, exc)

    def read(self) -> dict[str, Any] | None:
        """The last status published, None if none; a build said to run whose lock nobody holds is reported failed
        (its process ended first)."""
        status = self._read()
        if status is None or status.get("state") != BUILDING or self.held_elsewhere():
            return status
        status = self._read()  # it may have finished between the two looks
        if status is not None and status.get("state") == BUILDING:
            status.update(state=FAILED, error={"type": "BuildAbandoned", "message": "the server process running "
                                               "this build ended before the build did"})
        return status

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.directory / STATUS_FILE).read_text())
        except (OSError, ValueError):
            return None


class BuildManager:
    """At most one build per collection at a time; the status of the last one per collection."""

    def __init__(self, state: "BuildHost"):
        self.state = state
        self._lock = threading.Lock()
        self._status: dict[str, dict[str, Any]] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._shared: dict[str, SharedStatus] = {}  # collection -> its shared status, while this process builds it

    def status(self, handle: "BuildTarget") -> dict[str, Any]:
        """The last build's status: this process's own while it runs one, else the newest of its own and the one
        every process shares (another worker may have built it since)."""
        with self._lock:
            status = dict(self._status.get(handle.name) or {"state": IDLE})
        with handle.lock:
            col = handle.collection
            if status["state"] != BUILDING and not handle.sharded:
                shared = SharedStatus(col.directory).read()
                if shared is not None and shared.get("started_at", "") >= status.get("started_at", ""):
                    status = shared
            status.update(collection=handle.name, indexes=col.indexes, default_index=col.default_index)
        return status

    def building_elsewhere(self, handle: "BuildTarget") -> bool:
        """Whether another server process over this database is building an index of ``handle``'s collection."""
        return not handle.sharded and SharedStatus(handle.collection.directory).held_elsewhere()

    def start(self, handle: "BuildTarget", index_type: str, params: dict[str, Any], default: bool = True,
              ) -> dict[str, Any]:
        """Check the request, then build in the background; returns the 'building' status."""
        col = handle.collection
        reserved = {"type", "dim", "metric"} & set(params)
        if reserved:
            raise InvalidParameterError(f"{sorted(reserved)} are set by the collection, not by build parameters")
        from_config({"type": index_type, "dim": col.dim, "metric": col.metric, **params})  # raises on bad input
        with self._lock:
            running = self._status.get(handle.name, {})
            if running.get("state") == BUILDING:
                raise BuildInProgressError(
                    f"a {running['type']!r} build of {handle.name!r} is running since {running['started_at']}: "
                    "wait for it (GET .../index) before starting another"
                )
            shared = None if handle.sharded else SharedStatus(col.directory)
            if shared is not None and not shared.acquire():
                other = shared.read() or {}
                raise BuildInProgressError(
                    f"a {other.get('type', 'new')!r} build of {handle.name!r} is running in another server process "
                    f"since {other.get('started_at', 'a moment ago')}: wait for it (GET .../index) before starting "
                    "another"
                )
            self._status[handle.name] = {
                "state": BUILDING, "type": index_type, "params": params, "default": default,
                "started_at": _now_iso(), "finished_at": None, "build_s": None, "total_s": None, "count": None,
                "error": None,
            }
            if shared is not None:
                self._shared[handle.name] = shared
                shared.write(self._status[handle.name])
            handle.building = index_type
            thread = threading.Thread(target=self._run, args=(handle, index_type, params, default),
                                      name=f"build-{handle.name}", daemon=True)
            self._threads[handle.name] = thread
        thread.start()
        return self.status(handle)

    def forget(self, name: str) -> None:
        """Drop the build status of a collection that no longer exists."""
        with self._lock:
            self._status.pop(name, None)
            self._threads.pop(name, None)

    def wait(self, handle: "BuildTarget", timeout: float | None = None) -> dict[str, Any]:
        thread = self._threads.get(handle.name)
        if thread is not None:
            thread.join(timeout)
        return self.status(handle)

    def _run(self, handle: "BuildTarget", index_type: str, params: dict[str, Any], default: bool) -> None:
        t0 = time.perf_counter()
        outcome: dict[str, Any]
        try:
            from .opening import open_collection, warm_collection

            if handle.sharded:
                result = self._build_online(handle, index_type, params, default)
                db, col = handle.db, handle.collection
            else:
                result = self._build_in_child(handle, index_type, params, default)
                db, col = open_collection(handle.db_path, handle.name)
            loaded = warm_collection(col)
            handle.swap(db, col, loaded)
            outcome = {"state": DONE, "build_s": result.get("build_s"), "count": result.get("count"),
                       "config": result}
        except BuildFailed as exc:
            outcome = {"state": FAILED, "error": exc.error}
        except Exception as exc:  # noqa: BLE001 - a failed build is reported in its status, the server goes on
            log.exception("build of %s/%s failed", handle.name, index_type)
            outcome = {"state": FAILED, "error": {"type": type(exc).__name__, "message": str(exc)}}
        finally:
            handle.building = None
        outcome.update(finished_at=_now_iso(), total_s=round(time.perf_counter() - t0, 3))
        with self._lock:
            self._status[handle.name].update(outcome)
            self._processes.pop(handle.name, None)
            shared = self._shared.pop(handle.name, None)
            if shared is not None:  # published, then the lock let go: no process sees a build without an outcome
                shared.write(self._status[handle.name])
                shared.release()
        log.info("build %s/%s: %s", handle.name, index_type, outcome["state"])
        self.state.metrics.built(handle.name, index_type, outcome["state"], outcome.get("build_s"))

    def _build_in_child(self, handle: "BuildTarget", index_type: str, params: dict[str, Any],
                        default: bool) -> dict[str, Any]:
        spec = json.dumps({"type": index_type, "params": params, "default": default})
        command = [sys.executable, "-m", "lookalike.server.build_worker", str(handle.db_path), handle.name, spec]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=os.environ.copy())
        with self._lock:
            self._processes[handle.name] = process
        out, err = process.communicate()
        answer = _last_json_line(out)
        if process.returncode == 0 and answer is not None and "error" not in answer:
            return answer
        if answer is not None and "error" in answer:
            raise BuildFailed(answer["error"])
        raise BuildFailed({"type": "BuildProcessError",
                           "message": f"the build process exited with status {process.returncode}: "
                                      f"{err.strip()[-STDERR_TAIL:] or 'no output'}"})

    @staticmethod
    def _build_online(handle: "BuildTarget", index_type: str, params: dict[str, Any],
                      default: bool) -> dict[str, Any]:
        """Build the index of a sharded collection in actors beside its shards (they keep answering queries)."""
        try:
            result = handle.collection.create_index(index_type, default=default, online=True, **params)
        except LookalikeError as exc:
            raise BuildFailed({"type": exc.type_name, "message": str(exc)}) from None
        return json.loads(json.dumps(result, default=str))  # plain JSON, as the child process's answer is

    def running(self) -> bool:
        """Whether a build is still going on."""
        with self._lock:
            return any(thread.is_alive() for thread in self._threads.values())

    def close(self) -> None:
        """Stop builds still running (server shutdown): their index is simply not swapped in.  A sharded build
        cannot be stopped midway, so it is waited for (up to SHUTDOWN_WAIT_S) before the shards are closed."""
        with self._lock:
            processes = list(self._processes.values())
            threads = list(self._threads.values()) if self.state.sharded else []
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class BuildFailed(Exception):
    def __init__(self, error: dict[str, Any]):
        super().__init__(error.get("message"))
        self.error = error


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


__all__ = ["BuildManager"]
