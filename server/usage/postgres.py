"""The ledger's and the quotas' store in PostgreSQL (LLM_DATABASE_URL), shared by every
replica: a few asynchronous connections (psycopg), the same schema and operations as
SQLite (``server.usage.store``).

Connections come back by themselves: one that broke (the server restarted, a network
cut, an administrator's ``pg_terminate_backend``) or that a cancelled caller left in
the middle of a statement is closed and replaced by a new one on its next use, and an
operation that met a connection broken before it started is tried once more on a fresh
one. While the server cannot be reached, operations fail (the ledger drops and counts
rows, quota checks answer ``ledger_unavailable``) and the service keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import astuple
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from server.usage.store import (
    FORGET_SQL,
    INSERT_SQL,
    VERSION_SQL,
    Row,
    Step,
    old_windows,
    schema,
    select,
    versioning,
)

log = logging.getLogger("llm.ledger")
T = TypeVar("T")
Conn = AsyncConnection[tuple[Any, ...]]
MIGRATION_LOCK = 7340001  # pg_advisory_xact_lock key: one replica migrates at a time


class PostgresStore:
    name = "postgresql"

    def __init__(self, url: str, size: int = 4) -> None:
        self._url = url
        self._size = size
        # an idle connection, or None: to be (re)connected by whoever takes the slot
        self._slots: asyncio.Queue[Conn | None] = asyncio.Queue()
        self._closing: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        for _ in range(self._size):
            self._slots.put_nowait(None)
        await self._run(self._migrate)

    async def _migrate(self, conn: Conn) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            for statement in schema("BIGSERIAL", "DOUBLE PRECISION"):
                await conn.execute(statement)
            cursor = await conn.execute(VERSION_SQL)
            for statement in versioning(await cursor.fetchone()):
                await conn.execute(statement)

    @contextlib.asynccontextmanager
    async def _borrow(self, fresh: bool = False) -> AsyncIterator[Conn]:
        conn = await self._slots.get()
        try:
            if fresh or conn is None or conn.closed or conn.broken:
                self._discard(conn)
                conn = None
                conn = await AsyncConnection.connect(self._url, autocommit=True)
            yield conn
        finally:
            if conn is not None and (
                conn.broken or conn.info.transaction_status != TransactionStatus.IDLE
            ):
                self._discard(conn)  # left mid-statement or broken: start afresh next time
                conn = None
            self._slots.put_nowait(conn)

    def _discard(self, conn: Conn | None) -> None:
        if conn is None or conn.closed:
            return
        task = asyncio.get_running_loop().create_task(conn.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _run(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """``work`` on a connection; once more on a new one if that one was broken (the
        others of the pool may be too: the second try never takes an old one)."""
        for attempt in (1, 2):
            async with self._borrow(fresh=attempt == 2) as conn:
                try:
                    return await work(conn)
                except psycopg.OperationalError:
                    if attempt == 2 or not conn.broken:
                        raise
                    log.info("LEDGER a PostgreSQL connection broke; trying a new one")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        while not self._slots.empty():
            self._discard(self._slots.get_nowait())
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def write(self, rows: Sequence[Row]) -> None:
        async def work(conn: Conn) -> None:
            async with conn.transaction():
                await conn.cursor().executemany(INSERT_SQL, [astuple(r) for r in rows])

        await self._run(work)

    async def forget(self, before: float) -> int:
        async def work(conn: Conn) -> int:
            cursor = await conn.execute(FORGET_SQL, (before,))
            windows = old_windows()
            await conn.execute(windows.sql, windows.args)
            return cursor.rowcount

        return await self._run(work)

    async def usage(
        self, since: float, until: float, group_by: Sequence[str], caller: str | None
    ) -> list[dict[str, Any]]:
        day = "to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        sql, args = select(group_by, day, since, until, caller)

        async def work(conn: Conn) -> list[dict[str, Any]]:
            cursor = await conn.execute(sql, args)
            names = [d.name for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]

        return await self._run(work)

    async def apply(self, steps: Sequence[Step], lock: str = "") -> str:
        async def run(conn: Conn) -> str:
            for step in steps:
                cursor = await conn.execute(step.sql, step.args)
                if step.refusal and await cursor.fetchone() is None:
                    return step.refusal
            return ""

        async def work(conn: Conn) -> str:
            if not lock:  # each statement commits by itself: no BEGIN/COMMIT round trips
                return await run(conn)
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
                return await run(conn)

        return await self._run(work)
