"""``--param NAME=VALUE`` options of the command line, parsed once for every command that takes them."""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidParameterError


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["nlist=256", "metric=l2"]`` -> ``{"nlist": 256, "metric": "l2"}``: a value is JSON when it parses as
    JSON, else the text itself."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidParameterError(f"--param takes NAME=VALUE, got {pair!r}")
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params
