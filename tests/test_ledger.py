"""The usage ledger: every request on every face leaves exactly one row (failures and
cancellations included), by caller and face, without prompt or answer text, in SQLite
(the default) and in a real PostgreSQL; a slow or failing store delays and fails no
request; old rows go; the schema is created at start and a newer one refused."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from ollama_emulator import Emulator
from server.app import LlmServer
from server.config import Settings
from server.usage.store import Row, SqliteStore
from tests.conftest import (
    LocalShimStarter,
    RestStarter,
    StackFactory,
    bearer,
    headers,
    make_settings,
    wait_until,
)
from tests.streams import next_event

GATEWAY_KEY = "gateway-secret-key"
RAG_KEY = "rag-secret-key"
OPS_KEY = "ops-secret-key"
CALLERS = f"""
[[caller]]
name = "gateway"
key = "{GATEWAY_KEY}"

[[caller]]
name = "rag"
key = "{RAG_KEY}"
priority = "batch"

[[caller]]
name = "ops"
key = "{OPS_KEY}"
admin = true
"""
SECRET = "the-prompt-nobody-may-read"
MODEL = "llama3.2"


def callers(tmp_path: Path) -> Settings:
    path = tmp_path / "callers.toml"
    path.write_text(CALLERS)
    return Settings.from_env({"LLM_CALLERS_FILE": str(path)})


def read_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every row of the ledger, read straight from its database."""
    query = "SELECT * FROM usage_rows ORDER BY id"
    if settings.database_url:
        with psycopg.connect(settings.database_url) as conn:
            cursor = conn.execute(query)
            names = [d.name for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    with sqlite3.connect(Path(settings.data_dir) / "llm-usage.sqlite3") as db:
        lite = db.execute(query)
        columns = [d[0] for d in lite.description]
        return [dict(zip(columns, row, strict=True)) for row in lite.fetchall()]


async def rows_settled(server: LlmServer, count: int) -> None:
    """Waits until ``count`` rows have been recorded and written."""
    ledger = server.ledger
    assert ledger is not None

    async def written() -> bool:
        return await ledger.flushed(1.0) and ledger.written >= count

    await wait_until(written, 15, f"{count} ledger rows are written")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings of a ledger in SQLite (under a data dir) or in a fresh PostgreSQL database."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        return {"ledger": True, "database_url": url, "data_dir": str(tmp_path / "unused")}
    return {"ledger": True, "data_dir": str(tmp_path / "data")}


async def test_every_request_on_every_face_leaves_one_row(
    make_stack: StackFactory,
    serve_rest: RestStarter,
    emulator: Emulator,
    ledger_store: dict[str, Any],
    tmp_path: Path,
) -> None:
    named = callers(tmp_path)
    stack = await make_stack(callers=named.callers, max_tokens=1_000_000, **ledger_store)
    base = await serve_rest(stack)
    expected: list[tuple[str, str, str, str]] = []  # caller, face, method, outcome

    # gRPC: a success, a failure, a stream cancelled half-way, an embedding, the models.
    await stack.stub.Chat(pb.ChatRequest(message=SECRET, model=MODEL), metadata=bearer(GATEWAY_KEY))
    expected.append(("gateway", "grpc", "Chat", "success"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="nope"), metadata=bearer(RAG_KEY))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    expected.append(("rag", "grpc", "Chat", "failure"))
    emulator.faults.answer_tokens = 100_000
    call = stack.stub.ChatStream(
        pb.ChatStreamRequest(request=pb.ChatRequest(message=SECRET, model=MODEL)),
        metadata=bearer(GATEWAY_KEY),
    )
    assert (await next_event(call)).content
    call.cancel()
    expected.append(("gateway", "grpc", "ChatStream", "cancelled"))
    await asyncio.wait_for(stack.server.stats.wait_for_total(3), 10)
    emulator.faults.answer_tokens = None
    await stack.stub.Embed(pb.EmbedRequest(input=[SECRET]), metadata=bearer(RAG_KEY))
    expected.append(("rag", "grpc", "Embed", "success"))
    await stack.stub.ListModels(pb.ListModelsRequest(), metadata=bearer(RAG_KEY))
    expected.append(("rag", "grpc", "ListModels", "success"))

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        # The REST face, OpenAI's and Ollama's, each with a success and a failure.
        ok = await client.post("/chat", json={"message": SECRET}, headers=headers(RAG_KEY))
        assert ok.status_code == 200, ok.text
        expected.append(("rag", "rest", "Chat", "success"))
        bad = await client.post(
            "/chat", json={"message": "hi", "model": "nope"}, headers=headers(RAG_KEY)
        )
        assert bad.status_code == 404
        expected.append(("rag", "rest", "Chat", "failure"))
        chat = {"model": MODEL, "messages": [{"role": "user", "content": SECRET}]}
        ok = await client.post("/v1/chat/completions", json=chat, headers=headers(GATEWAY_KEY))
        assert ok.status_code == 200, ok.text
        expected.append(("gateway", "openai", "Chat", "success"))
        bad = await client.post(
            "/v1/chat/completions", json={**chat, "model": "nope"}, headers=headers(GATEWAY_KEY)
        )
        assert bad.status_code == 404
        expected.append(("gateway", "openai", "Chat", "failure"))
        generate = {"model": MODEL, "prompt": SECRET, "stream": False}
        ok = await client.post("/api/generate", json=generate, headers=headers(RAG_KEY))
        assert ok.status_code == 200, ok.text
        expected.append(("rag", "ollama", "Generate", "success"))
        tags = await client.get("/api/tags", headers=headers(RAG_KEY))
        assert tags.status_code == 200
        expected.append(("rag", "ollama", "ListModels", "success"))
        # Refused at the door (no caller): no row.
        assert (await client.get("/models")).status_code == 401

    await rows_settled(stack.server, len(expected))
    rows = read_rows(stack.settings)
    assert [(r["caller"], r["face"], r["method"], r["outcome"]) for r in rows] == expected
    assert len({r["request_id"] for r in rows}) == len(rows)
    first = rows[0]
    assert first["model"] == MODEL and first["host"] == emulator.url
    assert first["prompt_tokens"] > 0 and first["response_tokens"] > 0
    assert first["duration_ms"] > 0 and first["error_code"] == ""
    assert rows[1]["error_code"] == "model_not_found" and rows[1]["response_tokens"] == 0
    assert rows[2]["ttft_ms"] is not None and rows[2]["error_code"] == "cancelled"
    text = repr(rows)
    assert SECRET not in text and "Echo" not in text
    assert GATEWAY_KEY not in text and RAG_KEY not in text


async def test_a_failing_store_fails_no_request(
    make_stack: StackFactory,
    start_local_shim: LocalShimStarter,
    postgres_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = await make_stack(ledger=True, database_url=postgres_url, data_dir=str(tmp_path))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE usage_rows")
    caplog.set_level(logging.WARNING, logger="llm.ledger")
    for _ in range(3):
        assert (await stack.stub.Chat(pb.ChatRequest(message="hi", model=MODEL))).response
    ledger = stack.server.ledger
    assert ledger is not None

    async def dropped() -> bool:
        return await ledger.flushed(1.0) and ledger.dropped == 3

    await wait_until(dropped, 15, "three rows are dropped")
    assert "usage_rows" in caplog.text and "dropped" in caplog.text
    async with httpx.AsyncClient(base_url=await start_local_shim(stack.server)) as client:
        metrics = (await client.get("/metrics")).text
    assert "llm_ledger_dropped_rows_total 3.0" in metrics


async def test_a_slow_store_delays_no_request(
    make_stack: StackFactory, postgres_url: str, tmp_path: Path
) -> None:
    """The table locked by someone else: the writer waits, requests do not."""
    stack = await make_stack(ledger=True, database_url=postgres_url, data_dir=str(tmp_path))
    await stack.stub.Chat(pb.ChatRequest(message="hi", model=MODEL))
    await rows_settled(stack.server, 1)
    with psycopg.connect(postgres_url) as blocker:
        blocker.execute("LOCK TABLE usage_rows IN ACCESS EXCLUSIVE MODE")
        for _ in range(5):
            assert (await stack.stub.Chat(pb.ChatRequest(message="hi", model=MODEL))).response
        ledger = stack.server.ledger
        assert ledger is not None
        assert not await ledger.flushed(0.2) and ledger.written == 1  # stuck behind the lock
        blocker.rollback()
    await rows_settled(stack.server, 6)
    assert len(read_rows(stack.settings)) == 6


async def test_old_rows_are_deleted_in_the_background(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "llm-usage.sqlite3")
    await store.open()
    now = time.time()
    old = Row(
        now - 3 * 86400, "rag", "grpc", "Chat", MODEL, "", 1, 1, 1.0, None, "success", "", "a"
    )
    recent = Row(now - 3600, "rag", "grpc", "Chat", MODEL, "", 1, 1, 1.0, None, "success", "", "b")
    await store.write([old, recent])
    await store.close()
    stack = await make_stack(ledger=True, data_dir=str(tmp_path), ledger_retention_days=2)

    async def forgotten() -> bool:
        return [r["request_id"] for r in read_rows(stack.settings)] == ["b"]

    await wait_until(forgotten, 15, "the row older than the retention is deleted")


async def test_schema_is_kept_across_restarts_and_a_newer_one_refused(
    emulator: Emulator, tmp_path: Path
) -> None:
    settings = make_settings(emulator.url, ledger=True, data_dir=str(tmp_path))
    for expected_rows in (1, 2):  # the second start finds the first one's row
        server = LlmServer(settings)
        await server.start(host="127.0.0.1", port=0)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                await pb_grpc.LlmServiceStub(channel).Chat(
                    pb.ChatRequest(message="hi", model=MODEL)
                )
        finally:
            await server.stop(0.0)
        assert len(read_rows(settings)) == expected_rows
    with sqlite3.connect(tmp_path / "llm-usage.sqlite3") as db:
        db.execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(RuntimeError, match="newer"):
        await LlmServer(settings).start(host="127.0.0.1", port=0)


def summed(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], int]:
    return {(r["caller"], r["model"], r["day"]): r["requests"] for r in rows}


async def test_usage_by_caller_model_and_day_own_rows_unless_admin(
    make_stack: StackFactory, serve_rest: RestStarter, ledger_store: dict[str, Any], tmp_path: Path
) -> None:
    named = callers(tmp_path)
    stack = await make_stack(callers=named.callers, **ledger_store)
    base = await serve_rest(stack)
    for key, model, times in (
        (GATEWAY_KEY, MODEL, 2),
        (RAG_KEY, MODEL, 1),
        (RAG_KEY, "gpt-oss:20b", 3),
    ):
        for _ in range(times):
            await stack.stub.Chat(pb.ChatRequest(message="hi", model=model), metadata=bearer(key))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        everyone = await client.get(
            "/usage", params={"group_by": "caller,model,day"}, headers=headers(OPS_KEY)
        )
        assert everyone.status_code == 200, everyone.text
        body = everyone.json()
        assert body["all_callers"] is True and body["group_by"] == ["caller", "model", "day"]
        assert summed(body["rows"]) == {
            ("gateway", MODEL, today): 2,
            ("rag", "gpt-oss:20b", today): 3,
            ("rag", MODEL, today): 1,
        }
        rag_row = body["rows"][1]
        assert rag_row["prompt_tokens"] > 0 and rag_row["response_tokens"] > 0
        assert rag_row["failures"] == 0 and rag_row["average_duration_ms"] > 0

        own = await client.get("/usage", params={"group_by": "model"}, headers=headers(RAG_KEY))
        assert own.json()["all_callers"] is False
        assert summed(own.json()["rows"]) == {
            (None, "gpt-oss:20b", None): 3,
            (None, MODEL, None): 1,
        }

        totals = (await client.get("/usage", headers=headers(GATEWAY_KEY))).json()["rows"]
        assert [r["requests"] for r in totals] == [2]  # its own Chats only, not yet this query

        csv = await client.get(
            "/usage",
            params={"group_by": "caller"},
            headers={**headers(OPS_KEY), "accept": "text/csv"},
        )
        assert csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.splitlines()
        assert lines[0].startswith("caller,requests,prompt_tokens,response_tokens,failures")
        # gateway 2 Chats + 1 Usage; ops 1 Usage so far; rag 4 Chats + 1 Usage
        assert [line.split(",")[:2] for line in lines[1:]] == [
            ["gateway", "3"],
            ["ops", "1"],
            ["rag", "5"],
        ]

        future = await client.get(
            "/usage", params={"since": "2100-01-01T00:00:00Z"}, headers=headers(OPS_KEY)
        )
        assert future.status_code == 400 and "since must be before until" in future.text
        window = await client.get(
            "/usage",
            params={"since": "2000-01-01", "until": "2000-01-02"},
            headers=headers(OPS_KEY),
        )
        assert window.status_code == 200 and window.json()["rows"] == []
        for params in ({"since": "yesterday"}, {"group_by": "host"}, {"sort": "caller"}):
            bad = await client.get("/usage", params=params, headers=headers(OPS_KEY))
            assert bad.status_code == 400, (params, bad.text)
            assert bad.json()["code"] == "invalid_argument"

    reply = await stack.stub.Usage(
        pb.UsageRequest(group_by=[pb.USAGE_GROUP_CALLER]), metadata=bearer(RAG_KEY)
    )
    assert [(r.caller, r.requests) for r in reply.rows] == [("rag", 5)]  # 4 Chats, 1 Usage
    assert reply.store == ("postgresql" if "database_url" in ledger_store else "sqlite")


async def test_usage_when_the_ledger_is_off(make_stack: StackFactory) -> None:
    stack = await make_stack()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Usage(pb.UsageRequest())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "LLM_LEDGER" in (err.value.details() or "")


async def test_connections_dropped_by_postgresql_come_back(
    make_stack: StackFactory, postgres_url: str, tmp_path: Path
) -> None:
    """The server restarting, a network cut, an administrator's pg_terminate_backend:
    the next requests find new connections, for their quota and for their ledger row."""
    path = tmp_path / "callers.toml"
    path.write_text(f'[[caller]]\nname = "rag"\nkey = "{RAG_KEY}"\nrequests_per_minute = 1000\n')
    named = Settings.from_env({"LLM_CALLERS_FILE": str(path)})
    stack = await make_stack(
        callers=named.callers, ledger=True, database_url=postgres_url, data_dir=str(tmp_path)
    )
    chat = pb.ChatRequest(message="hi", model=MODEL)
    assert (await stack.stub.Chat(chat, metadata=bearer(RAG_KEY))).response
    await rows_settled(stack.server, 1)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    for _ in range(3):
        assert (await stack.stub.Chat(chat, metadata=bearer(RAG_KEY))).response
    await rows_settled(stack.server, 4)
    assert [r["caller"] for r in read_rows(stack.settings)] == ["rag"] * 4
    ledger = stack.server.ledger
    assert ledger is not None and ledger.dropped == 0
