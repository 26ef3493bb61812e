"""The usage ledger: one row per finished request, written in batches off the request
path. A request only puts its row on a bounded queue (never waits); a writer task
takes up to ``BATCH`` rows at a time into the store, gathering rows for up to
``LINGER`` seconds first (less when the batch fills, or someone waits for the rows),
so that a steady trickle of requests costs one write every ``LINGER`` seconds, not one
per request. A slow or failing store never
fails or delays a request: when the queue is full, or a batch cannot be written, the
rows are dropped, ``llm_ledger_dropped_rows_total`` counts them and a log line (at
most one a minute) says why. Rows older than LLM_LEDGER_RETENTION_DAYS are deleted in
the background, every hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from server.usage.store import Row, Store

log = logging.getLogger("llm.ledger")

QUEUE = 10_000
BATCH = 500
LINGER = 0.5
RETENTION_EVERY = 3600.0
COMPLAIN_EVERY = 60.0


class Ledger:
    def __init__(self, store: Store, retention_days: float) -> None:
        self.store = store
        self._retention = retention_days * 86400.0
        self._queue: asyncio.Queue[Row] = asyncio.Queue(QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self._complained = -COMPLAIN_EVERY
        self.written = 0
        self.dropped = 0
        self._hurry = asyncio.Event()

    async def start(self) -> None:
        """Starts writing (the store is open)."""
        self._tasks = [
            asyncio.create_task(self._write_forever(), name="ledger-writer"),
            asyncio.create_task(self._forget_forever(), name="ledger-retention"),
        ]

    def record(self, row: Row) -> None:
        """Queues ``row``; drops it (counted) when the queue is full. Never waits."""
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self._drop(1, "the ledger's queue is full (the store is too slow)")
            return
        if self._queue.qsize() >= BATCH:
            self._hurry.set()

    async def flushed(self, wait: float | None = None) -> bool:
        """Whether every queued row has been written (or dropped), waiting for it at
        most ``wait`` seconds (None: as long as it takes)."""
        self._hurry.set()
        try:
            async with asyncio.timeout(wait):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._complained >= COMPLAIN_EVERY:
            self._complained = now
            log.warning("LEDGER dropped %d row(s): %s (%d so far)", count, why, self.dropped)

    async def _write_forever(self) -> None:
        while True:
            rows = [await self._queue.get()]
            if not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LINGER):
                        await self._hurry.wait()
            self._hurry.clear()
            while len(rows) < BATCH and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            try:
                await self.store.write(rows)
                self.written += len(rows)
            except Exception as exc:  # a failing store must not stop the service
                self._drop(len(rows), f"the {self.store.name} store failed: {exc}")
            for _ in rows:
                self._queue.task_done()

    async def _forget_forever(self) -> None:
        while True:
            try:
                gone = await self.store.forget(time.time() - self._retention)
                if gone:
                    log.info("LEDGER deleted %d row(s) past the retention", gone)
            except Exception as exc:
                log.warning("LEDGER could not delete old rows: %s", exc)
            await asyncio.sleep(RETENTION_EVERY)

    async def aclose(self, grace: float = 5.0) -> None:
        """Writes what is queued (for at most ``grace`` seconds), then stops; the store
        stays open."""
        await self.flushed(grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
