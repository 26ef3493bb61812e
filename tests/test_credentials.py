"""Credentials in OLLAMA_BASE_URL (an authenticating proxy in front of Ollama) are sent
on every call, hot path included, and shown nowhere: not in health, readiness, service
info, Stats, metrics, error details or logs."""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator, refused_url
from tests.conftest import RestStarter, StackFactory

SECRET = "s3cret-pass"


def with_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"proxyuser:{SECRET}@{parts.netloc}").geturl()


async def test_credentials_are_sent_on_every_call(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(with_credentials(emulator.url))
    await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    async for _ in stack.stub.ChatStream(
        pb.ChatStreamRequest(request=pb.ChatRequest(message="hi", model="llama3.2"))
    ):
        pass
    await stack.stub.Embed(pb.EmbedRequest(input=["x"], model="bge-m3"))
    await stack.stub.Health(pb.HealthRequest())
    expected = "Basic " + base64.b64encode(f"proxyuser:{SECRET}".encode()).decode()
    for path in ("/api/chat", "/api/embed", "/api/tags", "/api/version"):
        seen = emulator.requests_to(path)
        assert seen, path
        assert all(r.headers.get("authorization") == expected for r in seen), path


async def test_credentials_are_shown_nowhere(
    make_stack: StackFactory,
    serve_rest: RestStarter,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = with_credentials(refused_url())
    stack = await make_stack(f"{dead},{with_credentials(emulator.url)}")
    base = await serve_rest(stack)
    seen: list[str] = []
    seen.append(str(await stack.stub.Health(pb.HealthRequest())))
    seen.append(str(await stack.stub.Stats(pb.StatsRequest())))
    await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    only_dead = await make_stack(dead)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await only_dead.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    seen.append(err.value.details() or "")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for path in ("/", "/health", "/readyz", "/stats", "/metrics", "/api/version"):
            seen.append((await client.get(path)).text)
    seen.append(stack.server.metrics.exposition().decode())
    seen.append(caplog.text)
    assert "127.0.0.1" in seen[0]  # the hosts are there, without their credentials
    for text in seen:
        assert SECRET not in text
        assert "proxyuser" not in text
