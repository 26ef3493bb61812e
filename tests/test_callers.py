"""Named callers (LLM_CALLERS_FILE): a key's caller by name in logs, metrics and Stats,
never the key; its allowed models (403 elsewhere, on every face); plain API keys still
work as callers without limits; a wrong file stops start-up with one clear line."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from server.config import ConfigError, Settings
from tests.conftest import RestStarter, StackFactory, bearer

RAG_KEY = "rag-secret-key"
ADMIN_KEY = "admin-secret-key"
CALLERS = f"""
[[caller]]
name = "rag"
key = "{RAG_KEY}"
priority = "batch"
models = ["llama3.2", "bge-m3"]

[[caller]]
name = "ops"
key_sha256 = "{hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}"
admin = true
"""


@pytest.fixture
def callers_file(tmp_path: Path) -> Path:
    path = tmp_path / "callers.toml"
    path.write_text(CALLERS)
    return path


async def test_callers_by_name_never_by_key(
    make_stack: StackFactory, callers_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings.from_env({"LLM_CALLERS_FILE": str(callers_file), "LLM_API_KEYS": "plain"})
    stack = await make_stack(callers=settings.callers, api_keys=settings.api_keys)
    chat = pb.ChatRequest(message="hi", model="llama3.2")
    await stack.stub.Chat(chat, metadata=bearer(RAG_KEY))
    await stack.stub.Chat(chat, metadata=bearer(ADMIN_KEY))
    await stack.stub.Chat(chat, metadata=bearer("plain"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat, metadata=bearer("unknown"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    plain_name = "key-" + hashlib.sha256(b"plain").hexdigest()[:8]
    everyone = await stack.stub.Stats(pb.StatsRequest(), metadata=bearer(ADMIN_KEY))
    assert set(everyone.per_caller) == {"rag", "ops", plain_name}
    own = await stack.stub.Stats(pb.StatsRequest(), metadata=bearer(RAG_KEY))
    assert set(own.per_caller) == {"rag"}
    assert own.per_caller["rag"].successful_requests == 1
    exposition = stack.server.metrics.exposition().decode()
    assert 'llm_caller_requests_total{caller="rag",outcome="success"} 1.0' in exposition
    for secret in (RAG_KEY, ADMIN_KEY, "plain"):
        assert secret not in exposition and secret not in caplog.text
    callers = [getattr(r, "fields", {}).get("caller") for r in caplog.records]
    assert {"rag", "ops", plain_name} <= set(callers)


async def test_a_model_outside_the_callers_models_is_denied_on_every_face(
    make_stack: StackFactory, serve_rest: RestStarter, callers_file: Path
) -> None:
    settings = Settings.from_env({"LLM_CALLERS_FILE": str(callers_file)})
    stack = await make_stack(callers=settings.callers)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(
            pb.ChatRequest(message="hi", model="gpt-oss:20b"), metadata=bearer(RAG_KEY)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "rag" in (err.value.details() or "") and RAG_KEY not in (err.value.details() or "")
    allowed = await stack.stub.Chat(
        pb.ChatRequest(message="hi", model="llama3.2:latest"), metadata=bearer(RAG_KEY)
    )
    assert allowed.response == "Echo: hi"
    base = await serve_rest(stack)
    headers = {"Authorization": f"Bearer {RAG_KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        native = await http.post("/chat", json={"message": "hi", "model": "gpt-oss:20b"})
        openai = await http.post(
            "/v1/chat/completions",
            json={"model": "gpt-oss:20b", "messages": [{"role": "user", "content": "hi"}]},
        )
        ollama = await http.post(
            "/api/generate", json={"model": "gpt-oss:20b", "prompt": "hi", "stream": False}
        )
        embed = await http.post("/embeddings", json={"input": ["x"], "model": "bge-m3"})
    assert (native.status_code, native.json()["code"]) == (403, "permission_denied")
    assert (openai.status_code, openai.json()["error"]["type"]) == (403, "permission_error")
    assert ollama.status_code == 403 and "may not use" in ollama.json()["error"]
    assert embed.status_code == 200


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[[caller]]\nname = 'x'\n", "give key or key_sha256"),
        ("[[caller]]\nname = 'x'\nkey = 'k'\npriority = 'urgent'\n", "priority"),
        ("[[caller]]\nname = 'x'\nkey = 'k'\ntokens_per_day = -1\n", "tokens_per_day"),
        ("[[caller]]\nname = 'x'\nkey = 'k'\nquota = 1\n", "unknown field 'quota'"),
        ("[[caller]]\nname = 'x'\nkey = 'k'\n[[caller]]\nname = 'x'\nkey = 'j'\n", "same name"),
        ("[[caller]\n", "not valid TOML"),
    ],
)
def test_a_wrong_callers_file_is_one_clear_error(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "callers.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="LLM_CALLERS_FILE") as err:
        Settings.from_env({"LLM_CALLERS_FILE": str(path)})
    assert complaint in str(err.value)
