"""A bounded hand-over of one stream's messages from the task that writes them to the
one that reads them: the in-process stub's streams (``server.inprocess``)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handover(Generic[T]):
    """``put`` waits for room (the stream's flow control, like a gRPC write); ``close``
    never waits, so the end of a stream (and its status) reaches the reader whatever
    the reader does. Nothing here can strand the writer: it only ever waits inside its
    own task, where cancellation reaches it.
    """

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque()
        self._size = size
        self._closed = False
        self._error: BaseException | None = None
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None

    async def put(self, item: T) -> None:
        while len(self._items) >= self._size:
            self._writer = asyncio.get_running_loop().create_future()
            try:
                await self._writer
            finally:
                self._writer = None
        self._items.append(item)
        _wake(self._reader)

    def close(self, error: BaseException | None) -> None:
        """The end of the stream: after the items put so far, its end or ``error``."""
        self._closed = True
        self._error = error
        _wake(self._reader)

    async def get(self) -> T | None:
        """The next item; ``None`` once the stream has ended (``error`` is raised once,
        in its place)."""
        while not self._items:
            if self._closed:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                return None
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        item = self._items.popleft()
        _wake(self._writer)
        return item


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
