"""Snapshot routes: take one while the server serves, list, download (streamed) and delete them.

Every route needs the API key when the server has one: a snapshot is the whole database.  Snapshots live in the
database directory's ``snapshots/`` folder (left out of the snapshots themselves); a name is a plain file name
ending in ``.tar`` that the server chose, so no request can reach outside that folder.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from ..database import FORMAT, FORMAT_VERSION, MARKER, SQLITE_FILE
from ..errors import IdNotFoundError, InvalidInputError, InvalidNameError
from .security import require_api_key

SNAPSHOT_DIR = "snapshots"
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.tar$")

router = APIRouter()
keyed = [Depends(require_api_key)]


def _folder(request: Request) -> Path:
    state = request.app.state.lookalike
    if state.sharded:
        raise InvalidInputError("a sharded database is snapshotted shard by shard: snapshot each shard's database")
    return state.db_path / SNAPSHOT_DIR


def _snapshot_path(request: Request, name: str) -> Path:
    if not SNAPSHOT_NAME.match(name):
        raise InvalidNameError(f"{name!r} is not a snapshot name (a file name ending in .tar, as POST returned)")
    path = _folder(request) / name
    if not path.is_file():
        raise IdNotFoundError(f"no snapshot named {name!r}: GET /api/snapshots lists them")
    return path


@router.post("/snapshots", status_code=201, dependencies=keyed, tags=["snapshots"])
def create_snapshot(request: Request) -> dict[str, Any]:
    """Write the whole database to one file while searches and writes go on (SQLite's online backup in one read
    transaction, which never blocks writers in WAL mode); answers its name and size in bytes."""
    from ..storage.snapshots import take_snapshot

    folder = _folder(request)
    name = f"snapshot-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}.tar"
    state = request.app.state.lookalike
    report = take_snapshot(state.db_path, folder / name, (MARKER, FORMAT, FORMAT_VERSION), SQLITE_FILE)
    return {"name": report["name"], "size": report["size"], "seconds": report["seconds"]}


@router.get("/snapshots", dependencies=keyed, tags=["snapshots"])
def list_snapshots(request: Request) -> dict[str, Any]:
    folder = _folder(request)
    files = sorted(folder.glob("*.tar")) if folder.exists() else []
    return {"snapshots": [{"name": f.name, "size": f.stat().st_size,
                           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(f.stat().st_mtime))}
                          for f in files if SNAPSHOT_NAME.match(f.name)]}


@router.get("/snapshots/{name}", dependencies=keyed, tags=["snapshots"], response_class=FileResponse)
def download_snapshot(name: str, request: Request) -> FileResponse:
    """The snapshot file, streamed (restore it with ``lookalike restore FILE --db DIR``)."""
    return FileResponse(_snapshot_path(request, name), media_type="application/x-tar", filename=name)


@router.delete("/snapshots/{name}", dependencies=keyed, tags=["snapshots"])
def delete_snapshot(name: str, request: Request) -> dict[str, Any]:
    _snapshot_path(request, name).unlink()
    return {"deleted": name}
