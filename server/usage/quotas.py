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
from server.usage.callers import Caller
from server.usage.store import Step, Store

log = logging.getLogger("llm.quotas")

DAY = 86400
# Each check passes when it returns a row.
UNDER_SQL = (
    "SELECT 1 WHERE COALESCE((SELECT count FROM quota_windows "
    "WHERE caller = %s AND kind = %s AND start = %s), 0) < %s"
)
TAKE_SQL = (
    "INSERT INTO quota_windows (caller, kind, start, count) VALUES (%s, %s, %s, 1) "
    "ON CONFLICT (caller, kind, start) DO UPDATE SET count = quota_windows.count + 1 "
    "WHERE quota_windows.count < %s RETURNING count"
)
HELD_SQL = "SELECT 1 WHERE (SELECT COUNT(*) FROM quota_leases WHERE caller = %s) < %s"
ADD_SQL = (
    "INSERT INTO quota_windows (caller, kind, start, count) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (caller, kind, start) DO UPDATE SET count = quota_windows.count + %s"
)


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
        lease = uuid.uuid4().hex if caller.max_concurrent else ""
        try:
            refused = await store.apply(
                _admission(caller, now, lease, now + self._lease_seconds),
                lock=caller.name if lease else "",
            )
        except (asyncio.CancelledError, Exception) as exc:
            if lease:  # the caller left, or the store failed, as the lease was taken
                self._later(store.apply([_release(lease)]), f"release a lease of '{caller.name}'")
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("QUOTA check for caller '%s' failed: %s", caller.name, exc)
            raise LedgerUnavailable(
                f"the {store.name} store that keeps quotas did not answer"
            ) from None
        if refused:
            raise _refusal(caller, refused, now)
        try:
            yield
        finally:
            # After the answer, off its path: whatever ended the call (cancellation too),
            # the lease back and the tokens counted in one call to the store.
            tokens = call.prompt_tokens + call.response_tokens
            steps = [_release(lease)] if lease else []
            if caller.tokens_per_day and tokens:
                day = int(self._clock() // DAY)
                steps.append(Step(ADD_SQL, (caller.name, "tokens", day, tokens, tokens)))
            if steps:
                self._later(store.apply(steps), f"settle the quotas of '{caller.name}'")

    def _later(self, work: Coroutine[Any, Any, object], what: str) -> None:
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


def _admission(caller: Caller, now: float, lease: str, expires: float) -> list[Step]:
    """The checks of ``caller``'s limits, in the order they refuse: its tokens for the
    day, its requests this minute (one taken), its generations at once (a lease taken).
    """
    steps: list[Step] = []
    if caller.tokens_per_day:
        day = (caller.name, "tokens", int(now // DAY), caller.tokens_per_day)
        steps.append(Step(UNDER_SQL, day, refusal="tokens"))
    if caller.requests_per_minute:
        minute = (caller.name, "rpm", int(now // 60), caller.requests_per_minute)
        steps.append(Step(TAKE_SQL, minute, refusal="rpm"))
    if lease:
        steps += [
            Step("DELETE FROM quota_leases WHERE expires < %s", (now,)),
            Step(HELD_SQL, (caller.name, caller.max_concurrent), refusal="concurrent"),
            Step("INSERT INTO quota_leases VALUES (%s, %s, %s)", (lease, caller.name, expires)),
        ]
    return steps


def _release(lease: str) -> Step:
    return Step("DELETE FROM quota_leases WHERE id = %s", (lease,))


def _refusal(caller: Caller, refused: str, now: float) -> QuotaExceeded:
    if refused == "tokens":
        return QuotaExceeded(
            f"caller '{caller.name}' used its {caller.tokens_per_day} tokens for today (UTC)",
            retry_after=_until(now, DAY),
        )
    if refused == "rpm":
        return QuotaExceeded(
            f"caller '{caller.name}' is over its {caller.requests_per_minute} requests a minute",
            retry_after=_until(now, 60),
        )
    return QuotaExceeded(
        f"caller '{caller.name}' already has {caller.max_concurrent} generations running",
        retry_after=1.0,
    )
