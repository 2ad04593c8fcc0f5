"""Algorithm definitions: one TOML file per algorithm family under ``configs/``, as ann-benchmarks keeps one
``config.yml`` per algorithm.  Each table is one algorithm:

    [lookalike-hnsw]
    library = "lookalike"          # which adapter runs it: lookalike, faiss, hnswlib, annoy
    index = "hnsw"                 # lookalike: the registry name; faiss: Flat, IVFFlat or HNSWFlat
    build = { M = [12, 16], ef_construction = [100] }     # the index is built once per combination
    query = { ef = [10, 20, 40, 80, 160] }                # and every combination is swept on it
    [lookalike-hnsw.quick]                                # optional, used by --sweep quick (the default)
    query = { ef = [10, 40, 160] }

A lookalike index type that ``registry.available()`` lists but no file defines still runs, with its default
build and query parameters, under the name ``lookalike-<type>``.
"""

from __future__ import annotations

import itertools
import os
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError

BUILTIN_CONFIG_DIR = Path(__file__).with_name("configs")
SWEEPS = ("quick", "full")


@dataclass
class Definition:
    name: str  # unique: "lookalike-hnsw", "faiss-hnsw", "hnswlib", ...
    library: str
    index: str | None = None
    build: dict[str, list[Any]] = field(default_factory=dict)
    query: dict[str, list[Any]] = field(default_factory=dict)
    description: str = ""
    source: str = ""  # the file it came from

    def build_grid(self) -> list[dict[str, Any]]:
        return _grid(self.build)

    def query_grid(self) -> list[dict[str, Any]]:
        return _grid(self.query)

    @property
    def n_points(self) -> int:
        return len(self.build_grid()) * len(self.query_grid())


def _grid(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in file order (the last name varies fastest)."""
    names = list(params)
    return [dict(zip(names, values)) for values in itertools.product(*(params[n] for n in names))]


def load_definitions(config_dir: str | os.PathLike | None = None, sweep: str = "quick",
                     extra: list[Definition] = ()) -> list[Definition]:
    """The built-in definitions, overridden (same name) or extended by the TOML files of ``config_dir``, then by
    ``extra`` (a preset's), plus one default entry for each available lookalike index type that no file mentions."""
    if sweep not in SWEEPS:
        raise InvalidParameterError(f"sweep must be one of {SWEEPS}, got {sweep!r}")
    by_name: dict[str, Definition] = {}
    dirs = [BUILTIN_CONFIG_DIR] + ([Path(config_dir)] if config_dir is not None else [])
    for directory in dirs:
        if not directory.is_dir():
            raise InvalidParameterError(f"config dir {directory} does not exist")
        for file in sorted(directory.glob("*.toml")):
            for definition in parse_config_file(file, sweep):
                by_name[definition.name] = definition
    by_name.update((definition.name, definition) for definition in extra)
    from ..index.registry import available

    types = available()
    covered = {d.index for d in by_name.values() if d.library == "lookalike"}
    for type_name in types:
        if type_name not in covered:
            name = f"lookalike-{type_name}"
            by_name.setdefault(name, Definition(name, "lookalike", type_name, description="default parameters"))
    order = {name: i for i, name in enumerate(types)}
    # lookalike first, in registry order, then the peers by name: the table and the plot legend read alike
    return sorted(by_name.values(), key=lambda d: (d.library != "lookalike", order.get(d.index, len(order)), d.name))



def parse_config_file(file: Path, sweep: str = "quick") -> list[Definition]:
    return parse_tables(read_toml(file), file, sweep)


def read_toml(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{file} is not valid TOML: {exc}") from None


def parse_tables(tables: dict[str, Any], file: Path, sweep: str = "quick") -> list[Definition]:
    """One definition per table of a TOML file (``file`` names it in errors)."""
    out = []
    for name, table in tables.items():
        if not isinstance(table, dict) or "library" not in table:
            raise InvalidParameterError(f"{file}: [{name}] must be a table with a 'library' key")
        build = _param_lists(table.get("build", {}), file, name)
        query = _param_lists(table.get("query", {}), file, name)
        override = table.get(sweep, {})
        if override:  # a sweep profile replaces whole parameter lists, name by name
            build.update(_param_lists(override.get("build", {}), file, name))
            query.update(_param_lists(override.get("query", {}), file, name))
        out.append(Definition(name, str(table["library"]), table.get("index"), build, query,
                              str(table.get("description", "")), str(file)))
    return out


def _param_lists(params: Any, file: Path, name: str) -> dict[str, list[Any]]:
    if not isinstance(params, dict):
        raise InvalidParameterError(f"{file}: [{name}] build/query must be tables of name = [values]")
    # a single value is a one-value list
    return {key: list(value) if isinstance(value, list) else [value] for key, value in params.items()}


def select(definitions: list[Definition], patterns: str | None) -> list[Definition]:
    """Definitions picked by a comma list: exact names, shell patterns (``lookalike-*``), or a bare word that
    picks every name containing it (``hnsw`` -> lookalike-hnsw, faiss-hnsw, hnswlib).  None keeps all."""
    if not patterns:
        return definitions
    picked: list[Definition] = []
    for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
        names = {d.name for d in definitions}
        if pattern in names:
            hits = [d for d in definitions if d.name == pattern]
        elif any(ch in pattern for ch in "*?["):
            hits = [d for d in definitions if fnmatchcase(d.name, pattern)]
        else:
            hits = [d for d in definitions if pattern in d.name]
        if not hits:
            raise InvalidParameterError(f"no algorithm matches {pattern!r}: known are {sorted(names)}")
        picked.extend(d for d in hits if d not in picked)
    return picked
