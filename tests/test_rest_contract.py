"""The REST face, driven over HTTP with the real gRPC server and the emulator behind it:
the shapes the Gateway and today's callers read, field by field."""

from __future__ import annotations

from datetime import datetime

import httpx

from ollama_emulator import Emulator
from ollama_emulator.content import count_prompt_tokens
from tests.conftest import Stack, ollama_tags


def _is_iso(value: object) -> bool:
    assert isinstance(value, str)
    datetime.fromisoformat(value)
    return True


async def test_root_describes_the_service(rest: httpx.AsyncClient, stack: Stack) -> None:
    r = await rest.get("/")
    assert r.status_code == 200
    body = r.json()
    assert body["service"] and body["version"] and body["description"]
    for name in ("health", "models", "chat", "stats"):
        assert body["endpoints"][name] == f"/{name}"
    assert body["configuration"]["ollama_base_url"] == stack.settings.ollama_base_url
    assert body["configuration"]["max_tokens"] == stack.settings.max_tokens
    assert _is_iso(body["timestamp"])


async def test_health_shape(rest: httpx.AsyncClient, emulator: Emulator) -> None:
    r = await rest.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    ollama = body["services"]["ollama"]
    assert ollama["status"] == "healthy"
    assert ollama["ollama_url"] == emulator.url
    # The settings page reads this list.
    assert ollama["available_models"] == [m["name"] for m in ollama_tags(emulator)]
    assert ollama["bge_m3_available"] is True
    assert ollama["gpt_oss_available"] is True
    assert ollama["total_models"] == len(ollama_tags(emulator))
    assert _is_iso(ollama["last_check"])
    assert isinstance(ollama["response_time_ms"], float)
    assert body["configuration"]["temperature"] == 0.7
    assert _is_iso(body["timestamp"])


async def test_models_shape_and_front_end_reads(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    r = await rest.get("/models")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success"
    tags = ollama_tags(emulator)
    assert body["total_count"] == len(tags)
    assert _is_iso(body["timestamp"])
    by_name = {m["name"]: m for m in body["models"]}
    for tag in tags:
        model = by_name[tag["name"]]
        # What the web front end reads:
        assert model["size"] == tag["size"]
        assert isinstance(model["size"], int)
        assert model["details"]["family"] == tag["details"]["family"]
        assert model["details"]["parameter_size"] == tag["details"]["parameter_size"]
        assert model["details"]["quantization_level"] == tag["details"]["quantization_level"]
        assert model["details"]["format"] == tag["details"]["format"]
        assert model["modified_at"] == tag["modified_at"]
        assert model["status"] == "available"
    assert by_name["bge-m3:latest"]["type"] == "embedding"
    assert by_name["gpt-oss:20b"]["type"] == "chat"


async def test_chat_shape(rest: httpx.AsyncClient, emulator: Emulator) -> None:
    r = await rest.post(
        "/chat",
        json={
            "message": "hello there",
            "model": "llama3.2",
            "history": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ],
            "max_tokens": 100,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success"
    assert body["response"] == "Echo: hello there"
    assert body["model"] == "llama3.2"
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert body["prompt_tokens"] == count_prompt_tokens(sent.body["messages"])
    assert body["response_tokens"] == 3
    assert body["total_tokens"] == body["prompt_tokens"] + body["response_tokens"]
    for key in ("prompt_tokens", "response_tokens", "total_tokens"):
        assert isinstance(body[key], int)
    assert isinstance(body["generation_time_ms"], float) and body["generation_time_ms"] > 0
    assert body["done_reason"] == "stop"
    assert _is_iso(body["timestamp"])
    assert [m["role"] for m in sent.body["messages"]] == ["user", "assistant", "user"]
    assert sent.body["options"]["num_predict"] == 100


async def test_chat_accepts_the_optional_fields(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    r = await rest.post(
        "/chat",
        json={
            "message": "hi",
            "model": "gpt-oss:20b",
            "temperature": 0.1,
            "top_p": 0.5,
            "system": "be terse",
            "stop": ["END"],
            "seed": 7,
            "format": {"type": "object"},
            "think": "low",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["thinking"] == "Thinking about: hi"
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert sent.body["messages"][0] == {"role": "system", "content": "be terse"}
    assert sent.body["options"]["temperature"] == 0.1
    assert sent.body["options"]["seed"] == 7
    assert sent.body["options"]["stop"] == ["END"]
    assert sent.body["format"] == {"type": "object"}
    assert sent.body["think"] == "low"


async def test_chat_think_as_boolean(rest: httpx.AsyncClient, emulator: Emulator) -> None:
    r = await rest.post("/chat", json={"message": "hi", "model": "gpt-oss:20b", "think": True})
    assert r.status_code == 200
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None and sent.body["think"] is True


async def test_chat_model_defaults(
    stack: Stack, rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    r = await rest.post("/chat", json={"message": "hi"})
    assert r.status_code == 200
    assert r.json()["model"] == stack.settings.default_model


async def test_batch_caller_pattern(rest: httpx.AsyncClient) -> None:
    """8,000-character prompts, max_tokens 1000, 300 s timeout, raise_for_status."""
    prompt = ("Проверьте документ на соответствие нормам. " * 200)[:8000]
    assert len(prompt) == 8000
    r = await rest.post(
        "/chat", json={"message": prompt, "max_tokens": 1000, "model": "llama3.2"}, timeout=300
    )
    r.raise_for_status()
    answer = r.json()["response"]
    assert answer.startswith("Echo: Проверьте документ")


async def test_stats_shape(rest: httpx.AsyncClient) -> None:
    await rest.post("/chat", json={"message": "hi", "model": "llama3.2"})
    await rest.post("/chat", json={"message": "hi", "model": "nope"})
    r = await rest.get("/stats")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success"
    s = body["statistics"]
    assert s["total_requests"] == 2
    assert s["successful_requests"] == 1
    assert s["failed_requests"] == 1
    assert s["success_rate_percent"] == 50.0
    assert s["total_tokens"] > 0 and isinstance(s["total_tokens"], int)
    assert s["average_generation_time_ms"] > 0
    assert _is_iso(s["last_request_time"])
    assert body["configuration"]["max_tokens"] == 2048
    assert _is_iso(body["timestamp"])


async def test_livez_and_readyz(rest: httpx.AsyncClient) -> None:
    assert (await rest.get("/livez")).status_code == 200
    r = await rest.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
