"""Metadata filters (``where``): parsed once into a small tree, then compiled to SQL over the JSON metadata column
(this module) or evaluated over in-memory columns (``lookalike.filter_masks``), with the same answer.

The shape is the one Chroma and Qdrant users know:
    {"colour": "white"}                                   equality (a scalar: str, int, float, bool)
    {"price": {"$gte": 10, "$lt": 50}}                    numeric range: $gt $gte $lt $lte (numbers only)
    {"class": {"$in": ["Dress", "Coat"]}}                 membership: $in, $nin
    {"class": {"$ne": "Bag"}}                             $eq, $ne (a point without the key is "not equal")
    {"$and": [{...}, {...}]}, {"$or": [{...}, {...}]}      boolean combinations; several keys in one dict = $and
Values are bound as SQL parameters.  Keys are validated (no quote, no control character) and written as SQL string
literals with single quotes doubled, so a filter can never inject SQL; literal paths (rather than bound ones) let
SQLite use an expression index on ``json_extract(metadata, '$."key"')`` (see ``metadata_index_sql``).
Anything else raises InvalidFilterError naming what is wrong.

Semantics, which both evaluations keep: a test on a key a point lacks (or holds as null, a list or an object) is
false; ``$ne`` and ``$nin`` are the negations of ``$eq`` and ``$in`` and so are true there; a value's type counts
("1" is not 1, true is not 1); numbers compare as numbers (1 equals 1.0).
"""

from __future__ import annotations

import numbers
import zlib
from dataclasses import dataclass
from typing import Any, Union

from ..errors import InvalidFilterError

MAX_DEPTH = 32
MAX_IN_VALUES = 10_000
MAX_KEY_LENGTH = 256
RANGE_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = {"$eq", "$ne", "$in", "$nin", *RANGE_OPS}


@dataclass(frozen=True)
class Test:
    """One condition on one key: ``op`` is $eq, $ne, $in, $nin (``value`` a tuple), or a range operator."""
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class Combine:
    """$and or $or of parts."""
    op: str
    parts: tuple["Node", ...]


Node = Union[Test, Combine]


# ---------------------------------------------------------------------- parsing
def parse_where(where: dict[str, Any] | None) -> Node | None:
    """The filter as a tree, checked; ``None`` or ``{}`` (everything matches) gives None."""
    if where is None or where == {}:
        return None
    return _parse(where, depth=0)


def _parse(node: Any, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise InvalidFilterError(f"filter nested deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict) or not node:
        raise InvalidFilterError(f"a filter must be a non-empty object, got {_short(node)}")
    parts = []
    for key, value in node.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidFilterError(f"{key} takes a non-empty list of filters, got {_short(value)}")
            parts.append(Combine(key, tuple(_parse(v, depth + 1) for v in value)))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidFilterError(f"unknown operator {key!r} at the top of a filter: use $and, $or or a field name")
        else:
            parts.append(_parse_field(_check_key(key), value))
    return parts[0] if len(parts) == 1 else Combine("$and", tuple(parts))


def _parse_field(key: str, cond: Any) -> Node:
    if not isinstance(cond, dict):
        return Test(key, "$eq", _check_scalar(cond))
    if not cond:
        raise InvalidFilterError(f"empty condition for field {key!r}")
    parts = []
    for op, value in cond.items():
        if op not in _FIELD_OPS:
            raise InvalidFilterError(f"unknown operator {op!r} on field {key!r}: use one of {sorted(_FIELD_OPS)}")
        if op in ("$eq", "$ne"):
            parts.append(Test(key, op, _check_scalar(value)))
        elif op in ("$in", "$nin"):
            parts.append(Test(key, op, _check_values(key, op, value)))
        else:
            if not _is_number(value):
                raise InvalidFilterError(f"{op} on field {key!r} needs a number, got {_short(value)}")
            parts.append(Test(key, op, value))
    return parts[0] if len(parts) == 1 else Combine("$and", tuple(parts))


def _check_scalar(value: Any) -> Any:
    if isinstance(value, (bool, str)) or _is_number(value):
        return value
    raise InvalidFilterError(f"can only compare to a string, number or boolean, got {_short(value)}")


def _check_values(key: str, op: str, values: Any) -> tuple:
    if not isinstance(values, list) or not values:
        raise InvalidFilterError(f"{op} on field {key!r} takes a non-empty list, got {_short(values)}")
    if len(values) > MAX_IN_VALUES:
        raise InvalidFilterError(f"{op} on field {key!r} has {len(values)} values, at most {MAX_IN_VALUES}")
    return tuple(_check_scalar(v) for v in values)


def keys_of(node: Node) -> set[str]:
    """Every key a filter tests."""
    if isinstance(node, Test):
        return {node.key}
    return set().union(*(keys_of(part) for part in node.parts))


# ---------------------------------------------------------------------- SQL
def compile_where(where: dict[str, Any] | None, column: str = "metadata") -> tuple[str, list[Any]]:
    """SQL boolean expression and its parameters.  ``None`` or ``{}`` matches everything."""
    node = parse_where(where)
    if node is None:
        return "1", []
    params: list[Any] = []
    return _sql(node, column, params), params


def _sql(node: Node, column: str, params: list[Any]) -> str:
    if isinstance(node, Combine):
        joiner = " AND " if node.op == "$and" else " OR "
        return "(" + joiner.join(_sql(part, column, params) for part in node.parts) + ")"
    path = path_literal(node.key)
    if node.op in ("$eq", "$ne"):
        test = _scalar_test(path, node.value, column, params)
        # a missing key makes the test NULL: NOT NULL is NULL (no match), so the negation needs COALESCE;
        # the plain test stays bare so SQLite can answer it from an expression index
        return f"NOT COALESCE({test}, 0)" if node.op == "$ne" else test
    if node.op in ("$in", "$nin"):
        tests = "(" + " OR ".join(_scalar_test(path, v, column, params) for v in node.value) + ")"
        return f"NOT COALESCE({tests}, 0)" if node.op == "$nin" else tests
    params.append(node.value)
    return (f"(json_type({column}, {path}) IN ('integer', 'real') AND "
            f"json_extract({column}, {path}) {RANGE_OPS[node.op]} ?)")


def _scalar_test(path: str, value: Any, column: str, params: list[Any]) -> str:
    """SQL that is true when the JSON value at ``path`` equals ``value`` (type included: "1" is not 1)."""
    if isinstance(value, bool):
        return f"(json_type({column}, {path}) = '{'true' if value else 'false'}')"
    params.append(value)
    if isinstance(value, str):
        return f"(json_type({column}, {path}) = 'text' AND json_extract({column}, {path}) = ?)"
    return f"(json_type({column}, {path}) IN ('integer', 'real') AND json_extract({column}, {path}) = ?)"


def path_literal(key: str) -> str:
    """The JSON path of a top-level key as an SQL string literal: '$."key"' (single quotes doubled)."""
    return "'" + ('$."' + _check_key(key) + '"').replace("'", "''") + "'"


def metadata_index_sql(key: str, column: str = "metadata", table: str = "points") -> str:
    """CREATE INDEX statement that makes equality and range filters on ``key`` use a B-tree."""
    name = "meta_" + "".join(c if c.isalnum() else "_" for c in key)[:48] + f"_{zlib.crc32(key.encode()):08x}"
    return f'CREATE INDEX IF NOT EXISTS "{name}" ON {table}(json_extract({column}, {path_literal(key)}))'


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidFilterError(f"filter keys must be non-empty strings, got {_short(key)}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidFilterError(f"filter key longer than {MAX_KEY_LENGTH} characters")
    if '"' in key or any(ord(c) < 32 for c in key):
        raise InvalidFilterError(f"filter key {_short(key)} contains a quote or a control character")
    return key


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
