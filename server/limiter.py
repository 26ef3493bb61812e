"""The service's own cap on concurrent generations, with a bounded, timed queue.

Ollama queues requests for a loaded model without limit, so the service must refuse
work itself: at most ``max_concurrent`` generations run, at most ``max_queue`` wait,
each for at most ``queue_timeout`` seconds (or its own deadline, if sooner). Refusals
are ``Overloaded`` (RESOURCE_EXHAUSTED / HTTP 429) with a retry-after hint. A stream
holds its slot until it ends. Health and model listing never pass through here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.errors import Overloaded


class GenerationLimiter:
    def __init__(self, max_concurrent: int, max_queue: int, queue_timeout: float) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self._free = max_concurrent
        self._waiters: list[asyncio.Future[None]] = []
        self._watchers: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def running(self) -> int:
        return self.max_concurrent - self._free

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def _retry_after(self) -> float:
        return float(max(1, math.ceil(self.queue_timeout / 2)))

    @asynccontextmanager
    async def slot(self, deadline: float) -> AsyncIterator[None]:
        """Holds one generation slot for the block; waits at most
        ``min(queue_timeout, deadline)`` seconds for it."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
        else:
            await self._wait(min(self.queue_timeout, deadline))
        try:
            yield
        finally:
            self._release()

    async def _wait(self, timeout: float) -> None:
        if len(self._waiters) >= self.max_queue:
            raise Overloaded(
                f"too many requests: {self.max_concurrent} generating and "
                f"{self.max_queue} queued; retry later",
                retry_after=self._retry_after(),
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._notify()
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the slot was handed over just as the wait ran out
            raise Overloaded(
                f"too many requests: no generation slot came free within {timeout:g} s; "
                "retry later",
                retry_after=self._retry_after(),
            ) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over just as the caller left
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def wait_until_queued(self, count: int) -> None:
        """Returns once ``count`` requests wait for a slot (for operators' tooling and
        tests that need a full queue)."""
        if self.queued >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers.append((count, future))
        await future

    def _notify(self) -> None:
        still = []
        for count, future in self._watchers:
            if self.queued >= count and not future.done():
                future.set_result(None)
            elif not future.done():
                still.append((count, future))
        self._watchers = still

    def _release(self) -> None:
        """Hands the slot to the oldest waiter still waiting, or frees it."""
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
