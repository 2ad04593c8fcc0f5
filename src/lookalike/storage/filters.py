"""Metadata filters (``where``) compiled to SQL over the JSON metadata column.

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
"""

from __future__ import annotations

import numbers
import zlib
from typing import Any

from ..errors import InvalidFilterError

MAX_DEPTH = 32
MAX_IN_VALUES = 10_000
MAX_KEY_LENGTH = 256
_RANGE_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = {"$eq", "$ne", "$in", "$nin", *_RANGE_OPS}


def compile_where(where: dict[str, Any] | None, column: str = "metadata") -> tuple[str, list[Any]]:
    """SQL boolean expression and its parameters.  ``None`` or ``{}`` matches everything."""
    if where is None or where == {}:
        return "1", []
    params: list[Any] = []
    sql = _compile(where, column, params, depth=0)
    return sql, params


def _compile(node: Any, column: str, params: list[Any], depth: int) -> str:
    if depth > MAX_DEPTH:
        raise InvalidFilterError(f"filter nested deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict) or not node:
        raise InvalidFilterError(f"a filter must be a non-empty object, got {_short(node)}")
    parts = []
    for key, value in node.items():
        if key in ("$and", "$or"):
            parts.append(_compile_bool(key, value, column, params, depth))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidFilterError(f"unknown operator {key!r} at the top of a filter: use $and, $or or a field name")
        else:
            parts.append(_compile_field(_check_key(key), value, column, params))
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _compile_bool(op: str, value: Any, column: str, params: list[Any], depth: int) -> str:
    if not isinstance(value, list) or not value:
        raise InvalidFilterError(f"{op} takes a non-empty list of filters, got {_short(value)}")
    joiner = " AND " if op == "$and" else " OR "
    return "(" + joiner.join(_compile(v, column, params, depth + 1) for v in value) + ")"


def path_literal(key: str) -> str:
    """The JSON path of a top-level key as an SQL string literal: '$."key"' (single quotes doubled)."""
    return "'" + ('$."' + _check_key(key) + '"').replace("'", "''") + "'"


def metadata_index_sql(key: str, column: str = "metadata", table: str = "points") -> str:
    """CREATE INDEX statement that makes equality and range filters on ``key`` use a B-tree."""
    name = "meta_" + "".join(c if c.isalnum() else "_" for c in key)[:48] + f"_{zlib.crc32(key.encode()):08x}"
    return f'CREATE INDEX IF NOT EXISTS "{name}" ON {table}(json_extract({column}, {path_literal(key)}))'


def _compile_field(key: str, cond: Any, column: str, params: list[Any]) -> str:
    path = path_literal(key)
    if not isinstance(cond, dict):
        return _equal(path, cond, column, params, negate=False)
    if not cond:
        raise InvalidFilterError(f"empty condition for field {key!r}")
    parts = []
    for op, value in cond.items():
        if op not in _FIELD_OPS:
            raise InvalidFilterError(f"unknown operator {op!r} on field {key!r}: use one of {sorted(_FIELD_OPS)}")
        if op in ("$eq", "$ne"):
            parts.append(_equal(path, value, column, params, negate=op == "$ne"))
        elif op in ("$in", "$nin"):
            parts.append(_membership(path, key, op, value, column, params))
        else:
            if not _is_number(value):
                raise InvalidFilterError(f"{op} on field {key!r} needs a number, got {_short(value)}")
            params.append(value)
            parts.append(f"(json_type({column}, {path}) IN ('integer', 'real') AND json_extract({column}, {path}) {_RANGE_OPS[op]} ?)")
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _equal(path: str, value: Any, column: str, params: list[Any], negate: bool) -> str:
    test = _scalar_test(path, value, column, params)
    # a missing key makes the test NULL: NOT NULL is NULL (no match), so the negation needs COALESCE;
    # the plain test stays bare so SQLite can answer it from an expression index
    return f"NOT COALESCE({test}, 0)" if negate else test


def _scalar_test(path: str, value: Any, column: str, params: list[Any]) -> str:
    """SQL that is true when the JSON value at ``path`` equals ``value`` (type included: "1" is not 1)."""
    if isinstance(value, bool):
        return f"(json_type({column}, {path}) = '{'true' if value else 'false'}')"
    if _is_number(value):
        params.append(value)
        return f"(json_type({column}, {path}) IN ('integer', 'real') AND json_extract({column}, {path}) = ?)"
    if isinstance(value, str):
        params.append(value)
        return f"(json_type({column}, {path}) = 'text' AND json_extract({column}, {path}) = ?)"
    raise InvalidFilterError(f"can only compare to a string, number or boolean, got {_short(value)}")


def _membership(path: str, key: str, op: str, values: Any, column: str, params: list[Any]) -> str:
    if not isinstance(values, list) or not values:
        raise InvalidFilterError(f"{op} on field {key!r} takes a non-empty list, got {_short(values)}")
    if len(values) > MAX_IN_VALUES:
        raise InvalidFilterError(f"{op} on field {key!r} has {len(values)} values, at most {MAX_IN_VALUES}")
    tests = "(" + " OR ".join(_scalar_test(path, v, column, params) for v in values) + ")"
    return f"NOT COALESCE({tests}, 0)" if op == "$nin" else tests


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
