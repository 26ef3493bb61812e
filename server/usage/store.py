"""Where usage and quota counters live: SQLite (a file under LLM_DATA_DIR, one replica,
nothing to install) or PostgreSQL (LLM_DATABASE_URL, shared by every replica, so that
two replicas enforce one limit). One schema and the same operations on both; the
schema is created, and migrated, at start (``schema_version``).

SQLite runs on one connection in a thread of its own (its calls block); PostgreSQL on
a few asynchronous connections (psycopg). A request's quota checks go to the store in
one call: one transaction in SQLite; in PostgreSQL single statements, or one short
transaction under a lock per caller when a lease is taken, so concurrent replicas
cannot both take the last unit.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Row:
    """One finished request: no prompt or answer text."""

    at: float  # when it started, Unix seconds
    caller: str
    face: str
    method: str
    model: str
    host: str
    prompt_tokens: int
    response_tokens: int
    duration_ms: float
    ttft_ms: float | None
    outcome: str
    error_code: str
    request_id: str


# The ledger's columns, in the order of ``Row`` (rows are written with ``astuple``).
COLUMNS = tuple(f.name for f in fields(Row))


def schema(serial: str, real: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS usage_rows (
            id {serial} PRIMARY KEY, at {real} NOT NULL, caller TEXT NOT NULL,
            face TEXT NOT NULL, method TEXT NOT NULL, model TEXT NOT NULL, host TEXT NOT NULL,
            prompt_tokens BIGINT NOT NULL, response_tokens BIGINT NOT NULL,
            duration_ms {real} NOT NULL, ttft_ms {real}, outcome TEXT NOT NULL,
            error_code TEXT NOT NULL, request_id TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS usage_rows_at ON usage_rows (at)",
        "CREATE INDEX IF NOT EXISTS usage_rows_caller_at ON usage_rows (caller, at)",
        """CREATE TABLE IF NOT EXISTS quota_windows (
            caller TEXT NOT NULL, kind TEXT NOT NULL, start BIGINT NOT NULL,
            count BIGINT NOT NULL, PRIMARY KEY (caller, kind, start))""",
        f"""CREATE TABLE IF NOT EXISTS quota_leases (
            id TEXT PRIMARY KEY, caller TEXT NOT NULL, expires {real} NOT NULL)""",
    ]


@dataclass(frozen=True)
class Step:
    """One statement of a quota transaction (``%s`` for each argument). A check (with a
    ``refusal``) passes when the statement returns a row."""

    sql: str
    args: tuple[Any, ...]
    refusal: str = ""


class Store(Protocol):
    name: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def write(self, rows: Sequence[Row]) -> None: ...
    async def forget(self, before: float) -> int: ...
    async def usage(
        self, since: float, until: float, group_by: Sequence[str], caller: str | None
    ) -> list[dict[str, Any]]: ...
    async def apply(self, steps: Sequence[Step], lock: str = "") -> str:
        """Runs ``steps`` in order, up to the first check that refuses, and returns its
        ``refusal`` ("" when none did). With ``lock``, they are one transaction that no
        other with the same lock overlaps (on any replica)."""
        ...


def select(
    group_by: Sequence[str], day: str, since: float, until: float, caller: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The usage query and its arguments; ``day`` is the store's expression of a row's
    date (UTC)."""
    keys = [day + " AS day" if g == "day" else g for g in group_by]
    where = "at >= %s AND at < %s" + (" AND caller = %s" if caller else "")
    args = (since, until, caller) if caller else (since, until)
    sql = (
        f"SELECT {', '.join([*keys, ''])}"
        "COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, "
        "SUM(response_tokens) AS response_tokens, "
        "SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END) AS failures, "
        "SUM(CASE WHEN outcome = 'cancelled' THEN 1 ELSE 0 END) AS cancellations, "
        "AVG(duration_ms) AS average_duration_ms "
        f"FROM usage_rows WHERE {where}"
        + (f" GROUP BY {', '.join(group_by)} ORDER BY {', '.join(group_by)}" if group_by else "")
    )
    return sql, args


# Both stores' statements are written with psycopg's ``%s``; SQLite's ``?`` replaces it.
INSERT_SQL = (
    f"INSERT INTO usage_rows ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)
FORGET_SQL = "DELETE FROM usage_rows WHERE at < %s"


class SqliteStore:
    """A SQLite file (WAL mode), for one replica."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")
        self._db: sqlite3.Connection | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None
            with self._db:  # one transaction, committed (or rolled back) at the end
                return work(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def open(self) -> None:
        def connect() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.isolation_level = "IMMEDIATE"
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._pool, connect)

        def migrate(db: sqlite3.Connection) -> None:
            for statement in schema("INTEGER", "REAL"):
                db.execute(statement)
            for statement in versioning(db.execute(VERSION_SQL).fetchone()):
                db.execute(statement)

        await self._run(migrate)

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)

    async def write(self, rows: Sequence[Row]) -> None:
        sql = _lite(INSERT_SQL)
        await self._run(lambda db: db.executemany(sql, [astuple(r) for r in rows]))

    async def forget(self, before: float) -> int:
        def work(db: sqlite3.Connection) -> int:
            gone = db.execute(_lite(FORGET_SQL), (before,)).rowcount
            windows = old_windows()
            db.execute(_lite(windows.sql), windows.args)
            return int(gone)

        return await self._run(work)

    async def usage(
        self, since: float, until: float, group_by: Sequence[str], caller: str | None
    ) -> list[dict[str, Any]]:
        sql, args = select(group_by, "date(at, 'unixepoch')", since, until, caller)
        sql = _lite(sql)

        def work(db: sqlite3.Connection) -> list[dict[str, Any]]:
            cursor = db.execute(sql, args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return await self._run(work)

    async def apply(self, steps: Sequence[Step], lock: str = "") -> str:
        # Always one IMMEDIATE transaction: it holds the file's write lock, ``lock`` or not.
        def work(db: sqlite3.Connection) -> str:
            for step in steps:
                cursor = db.execute(_lite(step.sql), step.args)
                if step.refusal and cursor.fetchone() is None:
                    return step.refusal
            return ""

        return await self._run(work)


@functools.cache
def _lite(sql: str) -> str:
    """A statement with SQLite's placeholders."""
    return sql.replace("%s", "?")


VERSION_SQL = "SELECT version FROM schema_version"


def versioning(found: Sequence[Any] | None) -> list[str]:
    """What the schema's version (``found``, read at start) asks for: to be recorded in a
    new database, nothing, or a newer service (``RuntimeError``)."""
    if found is None:
        return [f"INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION})"]
    if int(found[0]) > SCHEMA_VERSION:
        raise RuntimeError(
            f"the usage database has schema {found[0]}, newer than this service's "
            f"{SCHEMA_VERSION}: run a newer service"
        )
    return []


def old_windows() -> Step:
    """Quota windows nobody reads any more: minutes over, days before yesterday."""
    now = time.time()
    return Step(
        "DELETE FROM quota_windows WHERE (kind = 'rpm' AND start < %s) "
        "OR (kind = 'tokens' AND start < %s)",
        (int(now // 60) - 2, int(now // 86400) - 2),
    )


def open_store(database_url: str, data_dir: str) -> Store:
    """PostgreSQL when LLM_DATABASE_URL says so, else SQLite under LLM_DATA_DIR."""
    if database_url:
        from server.usage.postgres import PostgresStore  # the SQLite default needs no driver

        return PostgresStore(database_url)
    return SqliteStore(Path(data_dir) / "llm-usage.sqlite3")
