"""LangChain's standard vector store suite, and our own tests of the store, in embedded and in server mode.

The suite's async tests are plain ``async def`` methods (LangChain's repositories run pytest-asyncio in auto mode).
This repository keeps pytest-asyncio in strict mode, so the hook below marks the coroutine tests of this directory
with ``asyncio`` while they are collected, before pytest-asyncio looks for the mark."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra is not installed: pip install 'lookalike[langchain]'")
pytest.importorskip("pytest_asyncio", reason="pytest-asyncio (installed with langchain-tests) runs the async tests")

# the server and the client of tests/client, shared (session-scoped: one server for the whole run)
from tests.client.conftest import client, server  # noqa: E402,F401


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector, name, obj):
    outcome = yield
    items = outcome.get_result()
    for item in items if isinstance(items, list) else [items] if items is not None else []:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.asyncio)
