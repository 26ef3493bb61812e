"""The service's own cap on concurrent generations, with a bounded, timed queue.

Ollama queues requests for a loaded model without limit, so the service must refuse
work itself: at most ``max_concurrent`` generations run, at most ``max_queue`` wait,
each for at most ``queue_timeout`` seconds (or its own deadline, if sooner). Refusals
are ``Overloaded`` (RESOURCE_EXHAUSTED / HTTP 429) with a retry-after hint. A stream
holds its slot until it ends. Health and model listing never pass through here.

A freed slot goes to a waiting ``interactive`` caller before any ``batch`` one; within
a priority, callers take turns (round-robin by caller, each caller's own requests in
order), so one caller with hundreds queued cannot starve another.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.errors import Overloaded


class GenerationLimiter:
    def __init__(self, max_concurrent: int, max_queue: int, queue_timeout: float) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self._free = max_concurrent
        # priority -> caller -> that caller's waiters, oldest first; a dict's order is
        # the callers' turn order (a caller served goes to the back).
        self._queues: dict[str, dict[str, deque[asyncio.Future[None]]]] = {
            "interactive": {},
            "batch": {},
        }
        self._queued = 0
        self._watchers: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def running(self) -> int:
        return self.max_concurrent - self._free

    @property
    def queued(self) -> int:
        return self._queued

    def _retry_after(self) -> float:
        return float(max(1, math.ceil(self.queue_timeout / 2)))

    @asynccontextmanager
    async def slot(
        self, deadline: float, caller: str = "anonymous", priority: str = "interactive"
    ) -> AsyncIterator[None]:
        """Holds one generation slot for the block; waits at most
        ``min(queue_timeout, deadline)`` seconds for it."""
        if self._free > 0 and not self._queued:
            self._free -= 1
        else:
            await self._wait(min(self.queue_timeout, deadline), caller, priority)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, timeout: float, caller: str, priority: str) -> None:
        if self._queued >= self.max_queue:
            raise Overloaded(
                f"too many requests: {self.max_concurrent} generating and "
                f"{self.max_queue} queued; retry later",
                retry_after=self._retry_after(),
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._queues[priority].setdefault(caller, deque())
        line.append(waiter)
        self._queued += 1
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
            self._forget(waiter, caller, priority)  # still in line unless handed a slot

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

    def _forget(self, waiter: asyncio.Future[None], caller: str, priority: str) -> None:
        """Takes a waiter that gave up (timed out, cancelled) out of its caller's line."""
        line = self._queues[priority].get(caller)
        if line is not None and waiter in line:
            line.remove(waiter)
            self._queued -= 1
            if not line:
                del self._queues[priority][caller]

    def _release(self) -> None:
        """Hands the slot to the next waiter (interactive first, callers in turn), or
        frees it."""
        for callers in self._queues.values():
            while callers:
                caller = next(iter(callers))
                line = callers.pop(caller)
                waiter = line.popleft()
                self._queued -= 1
                if line:
                    callers[caller] = line  # the back of the turn order
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1
