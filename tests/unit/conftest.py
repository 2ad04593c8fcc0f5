"""Fixtures of the unit tests: an empty database in a fresh directory."""

from __future__ import annotations

import pytest

import lookalike


@pytest.fixture
def db(tmp_path):
    database = lookalike.Database(tmp_path / "db")
    yield database
    database.close()
