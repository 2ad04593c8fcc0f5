"""Index types by name: ``"flat"``, ``"ivf"``, ``"hnsw"``, ... -> class, and ``from_config(dict)``."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import InvalidParameterError, UnknownIndexTypeError

# name -> "module:Class", imported on first use so that ``import lookalike`` stays light
_INDEX_CLASSES: dict[str, str] = {
    "flat": "lookalike.index.flat:FlatIndex",
    "ivf": "lookalike.index.ivf:IVFIndex",
    "hnsw": "lookalike.index.hnsw:HNSWIndex",
    "lsh": "lookalike.index.lsh:LSHIndex",
    "rp_forest": "lookalike.index.rp_forest:RPForestIndex",
    "sq8": "lookalike.index.sq:SQ8Index",
    "ivfpq": "lookalike.index.ivfpq:IVFPQIndex",
}


def register(name: str, target: str) -> None:
    _INDEX_CLASSES[name] = target


def available() -> list[str]:
    """Names of the index types whose module is present."""
    names = []
    for name in _INDEX_CLASSES:
        try:
            get_index_class(name)
        except UnknownIndexTypeError:
            continue
        names.append(name)
    return names


def get_index_class(name: str):
    if not isinstance(name, str) or name not in _INDEX_CLASSES:
        raise UnknownIndexTypeError(f"unknown index type {name!r}: choose one of {sorted(_INDEX_CLASSES)}")
    module_name, class_name = _INDEX_CLASSES[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise UnknownIndexTypeError(f"index type {name!r} is not available in this build") from None
        raise
    return getattr(module, class_name)


def from_config(config: dict[str, Any]):
    """Make an empty index from ``{"type": ..., "dim": ..., "metric": ..., **build_params}``."""
    config = dict(config)
    klass = get_index_class(config.pop("type", None))
    try:
        dim = config.pop("dim")
    except KeyError:
        raise InvalidParameterError("an index config needs 'dim'") from None
    metric = config.pop("metric", "l2")
    try:
        return klass(dim, metric, **config)
    except TypeError as exc:  # an unknown build parameter
        raise InvalidParameterError(f"{klass.__name__}: {exc}") from None
