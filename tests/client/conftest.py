"""One test body for both clients: every call goes through ``api.run(...)``, which awaits a
coroutine (async client) or passes a value through (sync client). Test bodies are async."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from jmapsyncd.jmap import AsyncJMAPClient, JMAPClient

T = TypeVar("T")
KINDS = ("sync", "async")


class Api:
    """A client of either kind and the way to get results from it."""

    def __init__(self, client: JMAPClient | AsyncJMAPClient) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncJMAPClient)

    async def run(self, value: Awaitable[T] | T) -> T:
        if inspect.isawaitable(value):
            return await value
        return value

    # Every public method, called the same way on both kinds.
    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.run(method(*args, **kwargs))

        return call


@asynccontextmanager
async def open_api(kind: str, url: str, **kwargs: Any) -> AsyncIterator[Api]:
    """A client of ``kind`` used as a context manager, as users would."""
    if kind == "sync":
        with JMAPClient(url, **kwargs) as client:
            yield Api(client)
    else:
        async with AsyncJMAPClient(url, **kwargs) as aclient:
            yield Api(aclient)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value
