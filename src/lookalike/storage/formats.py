"""Reading the small JSON files that mark what a directory holds (a database, a sharded layout, an index).

Each carries ``format`` (what it is) and ``format_version`` (which layout of it); a file that is missing,
unreadable, of another format or of another version raises StorageFormatError saying which."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import StorageFormatError


def read_format_json(file: Path, fmt: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object in ``file``, checked to be ``what`` (e.g. "a lookalike database") at ``version``."""
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise StorageFormatError(f"{file.parent} is not {what}: no {file.name}") from None
    except (OSError, ValueError) as exc:
        raise StorageFormatError(f"{file} is unreadable or corrupt: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise StorageFormatError(f"{file} does not describe {what}")
    if data.get("format_version") != version:
        raise StorageFormatError(
            f"{file} has format_version {data.get('format_version')}, this lookalike reads {version}"
        )
    return data


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (a file created or renamed in it survives a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
