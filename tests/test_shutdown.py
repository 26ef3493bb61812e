"""Graceful shutdown: SIGTERM during running streams lets them finish, then exit 0."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from ollama_emulator import Emulator
from tests.conftest import StackFactory, free_port
from tests.service_process import Service

WORDS = " ".join(f"w{i}" for i in range(15))


@pytest.fixture
def service(emulator: Emulator) -> Iterator[tuple[Service, int, int]]:
    rest_port, grpc_port = free_port(), free_port()
    env = {
        "OLLAMA_BASE_URL": emulator.url,
        "HOST": "127.0.0.1",
        "PORT": str(rest_port),
        "GRPC_PORT": str(grpc_port),
        "SHUTDOWN_GRACE": "20",
        "LOG_LEVEL": "INFO",
    }
    svc = Service(["server", "--with-rest"], env)
    try:
        svc.wait_ready(f"http://127.0.0.1:{rest_port}/livez")
        yield svc, rest_port, grpc_port
    finally:
        svc.output()


async def test_sigterm_during_an_sse_stream(
    service: tuple[Service, int, int], emulator: Emulator
) -> None:
    svc, rest_port, _ = service
    emulator.faults.token_delay = 0.05
    body = {"message": WORDS, "model": "llama3.2"}
    events = []
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{rest_port}", timeout=30) as client,
        client.stream("POST", "/chat/stream", json=body) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                if len(events) == 1:
                    svc.terminate()
    assert events[-1]["done"] is True
    assert "".join(e["content"] for e in events) == f"Echo: {WORDS}"
    assert await svc.exit_code() == 0, svc.output()


async def test_sigterm_during_a_grpc_stream(
    service: tuple[Service, int, int], emulator: Emulator
) -> None:
    svc, _, grpc_port = service
    emulator.faults.token_delay = 0.05
    request = pb.ChatStreamRequest(request=pb.ChatRequest(message=WORDS, model="llama3.2"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        events = []
        async for event in pb_grpc.LlmServiceStub(channel).ChatStream(request, timeout=30):
            events.append(event)
            if len(events) == 1:
                svc.terminate()
    assert events[-1].done
    assert "".join(e.content for e in events) == f"Echo: {WORDS}"
    assert await svc.exit_code() == 0, svc.output()


async def test_idle_service_exits_zero_on_sigterm(service: tuple[Service, int, int]) -> None:
    svc, _, _ = service
    svc.terminate()
    assert await svc.exit_code() == 0, svc.output()


async def test_rest_shim_alone_exits_zero_on_sigterm(make_stack: StackFactory) -> None:
    stack = await make_stack()
    port = free_port()
    env = {"GRPC_TARGET": stack.target, "HOST": "127.0.0.1", "PORT": str(port)}
    svc = Service(["rest_shim"], env)
    try:
        await asyncio.to_thread(svc.wait_ready, f"http://127.0.0.1:{port}/health")
        svc.terminate()
        assert await svc.exit_code() == 0, svc.output()
    finally:
        svc.output()


async def test_drain_refuses_new_work_and_finishes_streams(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    """In-process: once stop(grace) begins, health is NOT_SERVING and new RPCs are
    refused, while the running stream completes."""
    stack = await make_stack()
    emulator.faults.token_delay = 0.05
    request = pb.ChatStreamRequest(request=pb.ChatRequest(message=WORDS, model="llama3.2"))
    stream = stack.stub.ChatStream(request)
    first = await stream.read()
    assert isinstance(first, pb.ChatStreamResponse)
    watch = health_pb2_grpc.HealthStub(stack.channel).Watch(health_pb2.HealthCheckRequest())
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

    stopping = asyncio.ensure_future(stack.server.stop(grace=20))
    statuses = [event.status async for event in _watch_rest(watch)]
    # The watch ends with NOT_SERVING rather than holding the server for the grace.
    assert statuses and statuses[-1] == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="new", model="llama3.2"), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    rest = [e async for e in _rest_of(stream)]
    assert rest[-1].done
    assert first.content + "".join(e.content for e in rest) == f"Echo: {WORDS}"
    await stopping


async def _watch_rest(
    watch: grpc.aio.UnaryStreamCall[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse],
) -> AsyncIterator[health_pb2.HealthCheckResponse]:
    while isinstance(event := await watch.read(), health_pb2.HealthCheckResponse):
        yield event


async def _rest_of(
    stream: grpc.aio.UnaryStreamCall[pb.ChatStreamRequest, pb.ChatStreamResponse],
) -> AsyncIterator[pb.ChatStreamResponse]:
    while isinstance(event := await stream.read(), pb.ChatStreamResponse):
        yield event


async def test_rest_port_taken_stops_with_a_clear_line(emulator: Emulator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        env = {
            "OLLAMA_BASE_URL": emulator.url,
            "HOST": "127.0.0.1",
            "PORT": str(taken.getsockname()[1]),
            "GRPC_PORT": str(free_port()),
        }
        svc = Service(["server", "--with-rest"], env)
        code = await svc.exit_code()
    out = svc.output()
    assert code != 0
    assert "could not start" in out
    assert "Traceback" not in out
