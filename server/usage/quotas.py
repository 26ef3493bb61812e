"""Per-caller quotas (LLM_CALLERS_FILE): requests a minute, tokens a day, generations at
once. Counters live in the ledger's store, so every replica on one PostgreSQL database
enforces one limit:

- ``requests_per_minute``: a counter per caller and calendar minute (UTC), taken with
  one atomic statement that refuses past the limit, so replicas never admit more than
  the limit between them;
- ``max_concurrent``: leases (one row per generation, deleted when it ends, expiring by
  themselves when a replica dies), taken under a lock per caller;
- ``tokens_per_day``: prompt and response tokens as the upstream reported them, added
  when a request ends, per calendar day (UTC). A request is admitted while the day's
  total is under the limit, so a caller can go over by what its requests in flight at
  that moment generate.

A refusal is ``QuotaExceeded`` (RESOURCE_EXHAUSTED / HTTP 429, code ``quota_exceeded``)
with a retry-after: the end of the minute, the end of the day, or one second for
concurrency. Callers without limits never touch the store.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from server.calls import Call
from server.errors import LedgerUnavailable, QuotaExceeded
from server.usage.store import Store

log = logging.getLogger("llm.quotas")

DAY = 86400


class Quotas:
    def __init__(
        self,
        store: Store | None,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def admitted(self, call: Call) -> AsyncIterator[None]:
        """Holds the caller's quotas for the block, or raises ``QuotaExceeded``; on the
        way out (however it ends) the tokens are counted and the lease released."""
        caller = call.caller
        if not caller.limited:
            yield
            return
        if self._store is None:  # refused at start: limits need the ledger's store
            raise LedgerUnavailable("quotas need the usage ledger (LLM_LEDGER)")
        store, now = self._store, self._clock()
        lease = ""
        try:
            if caller.tokens_per_day:
                day = int(now // DAY)
                if await store.used(caller.name, "tokens", day) >= caller.tokens_per_day:
                    raise QuotaExceeded(
                        f"caller '{caller.name}' used its {caller.tokens_per_day} tokens "
                        "for today (UTC)",
                        retry_after=_until(now, DAY),
                    )
            if caller.requests_per_minute:
                minute = int(now // 60)
                if not await store.take(caller.name, "rpm", minute, caller.requests_per_minute):
                    raise QuotaExceeded(
                        f"caller '{caller.name}' is over its {caller.requests_per_minute} "
                        "requests a minute",
                        retry_after=_until(now, 60),
                    )
            if caller.max_concurrent:
                lease = uuid.uuid4().hex
                expires = now + self._lease_seconds
                if not await store.lease(caller.name, lease, caller.max_concurrent, expires):
                    lease = ""
                    raise QuotaExceeded(
                        f"caller '{caller.name}' already has {caller.max_concurrent} "
                        "generations running",
                        retry_after=1.0,
                    )
        except QuotaExceeded:
            raise
        except asyncio.CancelledError:
            if lease:  # the caller left while the lease was being taken: it may exist
                self._later(store.release(lease), f"release a lease of '{caller.name}'")
            raise
        except Exception as exc:  # the store's driver errors: refuse, do not guess
            if lease:
                self._later(store.release(lease), f"release a lease of '{caller.name}'")
            log.warning("QUOTA check for caller '%s' failed: %s", caller.name, exc)
            raise LedgerUnavailable(
                f"the {store.name} store that keeps quotas did not answer"
            ) from None
        try:
            yield
        finally:
            # After the answer, off its path: whatever ended the call (cancellation too).
            if lease:
                self._later(store.release(lease), f"release a lease of '{caller.name}'")
            tokens = call.prompt_tokens + call.response_tokens
            if caller.tokens_per_day and tokens:
                day = int(self._clock() // DAY)
                self._later(
                    store.add(caller.name, "tokens", day, tokens), f"count '{caller.name}' tokens"
                )

    def _later(self, work: Coroutine[Any, Any, None], what: str) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("QUOTA could not %s: %s", what, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Returns once every counter update started so far is written."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _until(now: float, window: int) -> float:
    """Seconds until the current window (a minute, a day) ends; at least one."""
    return float(max(1, math.ceil(window - now % window)))
