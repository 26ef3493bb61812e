"""The Ollama emulator answers like Ollama: checked with the official ``ollama`` client.

Expectations come from ``ollama_emulator.content`` and from what the emulator
recorded, never from magic numbers. No test sleeps to synchronise: they wait on the
emulator's counters or on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import ollama
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ollama_emulator import Emulator, Faults, ModelSpec, ThreadedServer, refused_url
from ollama_emulator.content import (
    count_prompt_tokens,
    count_words,
    embed_vector,
    generate,
    tokenize,
)
from ollama_emulator.wire import BUSY_MESSAGE, NO_EMBEDDINGS_MESSAGE
from tests.accept_race import hold_stop_at_accept

CHAT = "llama3.2"
THINKER = "gpt-oss:20b"
EMBEDDER = "bge-m3"
PROMPT = "why is the sky blue?"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": PROMPT},
]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[ollama.AsyncClient]:
    async with ollama.AsyncClient(host=emu.url) as c:
        yield c


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emu.url, timeout=10.0) as c:
        yield c


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


# -- server and catalog ----------------------------------------------------------------


async def test_root_version_and_unknown_paths(http: httpx.AsyncClient) -> None:
    root = await http.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert (await http.head("/")).status_code == 200
    version = await http.get("/api/version")
    assert version.status_code == 200
    assert isinstance(version.json()["version"], str)
    missing = await http.get("/api/nope")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    wrong = await http.get("/api/chat")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


async def test_list_show_and_ps_parse(emu: Emulator, client: ollama.AsyncClient) -> None:
    listed = await client.list()
    assert [m.model for m in listed.models] == [m.key for m in emu.models]
    for entry, spec in zip(listed.models, emu.models, strict=True):
        assert entry.size == spec.size
        assert entry.digest is not None and len(entry.digest) == 64
        assert entry.modified_at is not None
        assert entry.details is not None and entry.details.family == spec.family

    shown = await client.show(EMBEDDER)
    assert shown.capabilities == ["embedding"]
    assert shown.details is not None and shown.details.quantization_level == "F16"
    assert shown.modelinfo is not None and shown.modelinfo["bert.embedding_length"] == 1024
    assert (await client.show(THINKER)).capabilities == ["completion", "tools", "thinking"]

    assert (await client.ps()).models == []
    await client.chat(model=CHAT, messages=MESSAGES)
    running = (await client.ps()).models
    assert [m.model for m in running] == ["llama3.2:latest"]
    assert running[0].expires_at is not None and running[0].size_vram == running[0].size

    unload = await client.chat(model=CHAT, messages=[], keep_alive=0)
    assert (unload.done, unload.done_reason) == (True, "unload")
    assert (await client.ps()).models == []


async def test_show_unknown_model_is_404(client: ollama.AsyncClient) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        await client.show("nope")
    assert (err.value.status_code, err.value.error) == (404, "model 'nope' not found")


# -- chat -------------------------------------------------------------------------------


async def test_chat_stream_joins_to_the_single_answer(
    emu: Emulator, client: ollama.AsyncClient
) -> None:
    single = await client.chat(model=CHAT, messages=MESSAGES)
    chunks = [c async for c in await client.chat(model=CHAT, messages=MESSAGES, stream=True)]

    expected = generate(MESSAGES)
    assert single.message.content == expected.content == "Echo: " + PROMPT
    assert "".join(c.message.content or "" for c in chunks) == single.message.content
    *tokens, final = chunks
    assert [c.message.content for c in tokens] == list(expected.content_tokens)
    assert not any(c.done for c in tokens) and all(c.message.role == "assistant" for c in chunks)
    assert (final.done, final.done_reason, final.message.content) == (True, "stop", "")
    recorded = emu.requests_to("/api/chat")[-1].body
    assert recorded is not None
    for answer in (single, final):
        assert answer.prompt_eval_count == count_prompt_tokens(recorded["messages"])
        assert answer.eval_count == len(tokens)
        assert all(
            isinstance(getattr(answer, f), int) and getattr(answer, f) > 0
            for f in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
        )
    assert single.message.thinking is None


async def test_gpt_oss_thinks_apart_from_content(client: ollama.AsyncClient) -> None:
    single = await client.chat(model=THINKER, messages=MESSAGES, think=False)
    chunks = [c async for c in await client.chat(model=THINKER, messages=MESSAGES, stream=True)]

    expected = generate(MESSAGES, thinks=True)
    assert single.message.thinking == expected.thinking == "Thinking about: " + PROMPT
    assert single.message.content == expected.content
    thinking = [c for c in chunks if c.message.thinking]
    content = [c for c in chunks if c.message.content]
    assert chunks.index(thinking[-1]) < chunks.index(content[0])
    assert all(c.message.content == "" for c in thinking)
    assert "".join(c.message.thinking or "" for c in thinking) == single.message.thinking
    assert "".join(c.message.content or "" for c in content) == single.message.content
    assert chunks[-1].eval_count == single.eval_count == len(thinking) + len(content)


async def test_thinking_levels_and_refusals(client: ollama.AsyncClient) -> None:
    high = await client.chat(model=THINKER, messages=MESSAGES, think="high")
    assert high.message.thinking == generate(MESSAGES, thinks=True).thinking
    plain = await client.chat(model=CHAT, messages=MESSAGES, think=False)
    assert plain.message.thinking is None
    with pytest.raises(ollama.ResponseError) as err:
        await client.chat(model=CHAT, messages=MESSAGES, think=True)
    assert (err.value.status_code, err.value.error) == (400, '"llama3.2" does not support thinking')


@pytest.mark.parametrize(
    "fmt", ["json", {"type": "object", "properties": {"echo": {"type": "string"}}}]
)
async def test_format_answers_json(client: ollama.AsyncClient, fmt: Any) -> None:
    answer = await client.chat(model=CHAT, messages=MESSAGES, format=fmt)
    assert answer.message.content is not None
    assert json.loads(answer.message.content) == {"echo": PROMPT}


async def test_num_predict_caps_thinking_and_content(client: ollama.AsyncClient) -> None:
    full = generate(MESSAGES, thinks=True)
    cap = len(full.thinking_tokens) + 2
    answer = await client.chat(model=THINKER, messages=MESSAGES, options={"num_predict": cap})
    assert (answer.done_reason, answer.eval_count) == ("length", cap)
    assert answer.message.thinking == full.thinking
    assert answer.message.content == "".join(full.content_tokens[:2])


async def test_stop_strings_end_the_answer(client: ollama.AsyncClient) -> None:
    answer = await client.chat(model=CHAT, messages=MESSAGES, options={"stop": [" blue"]})
    assert (answer.done_reason, answer.message.content) == ("stop", "Echo: why is the sky")
    assert answer.eval_count == len(tokenize("Echo: why is the sky"))


async def test_stream_is_the_default_and_real(emu: Emulator) -> None:
    emu.faults.token_delay = 0.03
    body = {"model": CHAT, "messages": MESSAGES}
    async with (
        httpx.AsyncClient(base_url=emu.url) as http,
        http.stream("POST", "/api/chat", json=body) as response,
    ):
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = response.aiter_lines()
        first = json.loads(await anext(lines))
        # the first token arrived while the rest is still being generated
        assert emu.active_responses == 1
        rest = [json.loads(line) async for line in lines if line]
    assert first["message"]["content"] == generate(MESSAGES).content_tokens[0]
    assert [c["done"] for c in rest] == [False] * (len(rest) - 1) + [True]


async def test_chat_errors_like_ollama(emu: Emulator, http: httpx.AsyncClient) -> None:
    async with ollama.AsyncClient(host=emu.url) as client:
        with pytest.raises(ollama.ResponseError) as err:
            await client.chat(model="nope", messages=MESSAGES)
        assert (err.value.status_code, err.value.error) == (404, "model 'nope' not found")
        with pytest.raises(ollama.ResponseError) as err:
            await client.chat(model=EMBEDDER, messages=MESSAGES)
        assert (err.value.status_code, err.value.error) == (400, '"bge-m3" does not support chat')

    missing = await http.post("/api/chat", json={"messages": MESSAGES})
    assert (missing.status_code, missing.json()) == (400, {"error": "model is required"})
    malformed = await http.post("/api/chat", content=b'{"model": ')
    assert malformed.status_code == 400 and "error" in malformed.json()
    bad_option = await http.post("/api/chat", json={"model": CHAT, "options": {"num_predict": "x"}})
    assert bad_option.status_code == 500
    odd_role = await http.post(
        "/api/chat",
        json={"model": CHAT, "stream": False, "messages": [{"role": "wizard", "content": "hi"}]},
    )
    assert odd_role.status_code == 200


async def test_empty_messages_load_the_model(client: ollama.AsyncClient) -> None:
    loaded = await client.chat(model=CHAT, messages=[])
    assert (loaded.done, loaded.done_reason, loaded.message.content) == (True, "load", "")


# -- embeddings -------------------------------------------------------------------------


async def test_embed_one_and_many(emu: Emulator, client: ollama.AsyncClient) -> None:
    texts = ["the sky is blue", "grass is green"]
    many = await client.embed(model=EMBEDDER, input=texts)
    swapped = await client.embed(model=EMBEDDER, input=texts[::-1])
    one = await client.embed(model=EMBEDDER, input=texts[0])

    dim = emu.models[1].embedding_dim
    assert [len(v) for v in many.embeddings] == [dim, dim]
    assert all(
        math.isclose(math.fsum(x * x for x in v), 1.0, abs_tol=1e-6) for v in many.embeddings
    )
    assert list(many.embeddings[0]) == list(one.embeddings[0]) == embed_vector(texts[0], dim)
    assert list(many.embeddings[0]) != list(many.embeddings[1])
    assert [list(v) for v in swapped.embeddings] == [list(v) for v in many.embeddings[::-1]]
    assert many.prompt_eval_count == sum(count_words(t) for t in texts)
    assert many.model == EMBEDDER

    short = await client.embed(model=EMBEDDER, input=texts[0], dimensions=8)
    assert len(short.embeddings[0]) == 8
    assert math.isclose(math.fsum(x * x for x in short.embeddings[0]), 1.0, abs_tol=1e-6)


async def test_embed_errors_like_ollama(client: ollama.AsyncClient) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        await client.embed(model=THINKER, input="hi")
    assert (err.value.status_code, err.value.error) == (501, NO_EMBEDDINGS_MESSAGE)
    with pytest.raises(ollama.ResponseError) as err:
        await client.embed(model="nope", input="hi")
    assert (err.value.status_code, err.value.error) == (
        404,
        'model "nope" not found, try pulling it first',
    )


async def test_legacy_embeddings(client: ollama.AsyncClient) -> None:
    legacy = await client.embeddings(model=EMBEDDER, prompt="hello")
    assert list(legacy.embedding) == embed_vector("hello", 1024)


# -- faults -----------------------------------------------------------------------------


async def test_busy_and_error_status(emu: Emulator, client: ollama.AsyncClient) -> None:
    emu.faults.busy = True
    with pytest.raises(ollama.ResponseError) as err:
        await client.chat(model=CHAT, messages=MESSAGES)
    assert (err.value.status_code, err.value.error) == (503, BUSY_MESSAGE)
    with pytest.raises(ollama.ResponseError) as err:
        await client.embed(model=EMBEDDER, input="x")
    assert err.value.status_code == 503

    emu.faults = Faults(error_status=500, error_message="boom")
    stream = await client.chat(model=CHAT, messages=MESSAGES, stream=True)
    with pytest.raises(ollama.ResponseError) as err:
        await anext(stream)
    assert (err.value.status_code, err.value.error) == (500, "boom")


async def test_times_limits_how_many_requests_fail(
    emu: Emulator, client: ollama.AsyncClient
) -> None:
    emu.faults.busy = True
    emu.faults.times = 2
    for _ in range(2):
        with pytest.raises(ollama.ResponseError):
            await client.chat(model=CHAT, messages=MESSAGES)
    answer = await client.chat(model=CHAT, messages=MESSAGES)
    assert answer.message.content == generate(MESSAGES).content
    assert emu.faults.times == 0


async def test_tags_error_status_breaks_only_the_catalog(
    emu: Emulator, client: ollama.AsyncClient, http: httpx.AsyncClient
) -> None:
    emu.faults.tags_error_status = 500
    with pytest.raises(ollama.ResponseError) as err:
        await client.list()
    assert err.value.status_code == 500
    assert (await http.get("/api/version")).status_code == 500
    assert (await client.chat(model=CHAT, messages=MESSAGES)).done


async def test_error_after_chunks_ends_the_stream_with_an_error_line(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    emu.faults.error_after_chunks = 2
    response = await http.post("/api/chat", json={"model": CHAT, "messages": MESSAGES})
    lines = ndjson(response.text)
    assert response.status_code == 200
    assert [line["message"]["content"] for line in lines[:2]] == list(
        generate(MESSAGES).content_tokens[:2]
    )
    assert lines[2:] == [{"error": emu.faults.error_message}]

    single = await http.post(
        "/api/chat", json={"model": CHAT, "messages": MESSAGES, "stream": False}
    )
    assert (single.status_code, single.json()) == (500, {"error": emu.faults.error_message})

    async with ollama.AsyncClient(host=emu.url) as client:
        stream = await client.chat(model=CHAT, messages=MESSAGES, stream=True)
        with pytest.raises(ollama.ResponseError):
            async for _ in stream:
                pass


async def test_cut_after_chunks_drops_the_connection(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    emu.faults.cut_after_chunks = 2
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream(
            "POST", "/api/chat", json={"model": CHAT, "messages": MESSAGES}
        ) as r:
            async for line in r.aiter_lines():
                received.append(line)
    assert [json.loads(line)["message"]["content"] for line in received] == list(
        generate(MESSAGES).content_tokens[:2]
    )
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/api/chat", json={"model": CHAT, "messages": MESSAGES, "stream": False})
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/api/embed", json={"model": EMBEDDER, "input": "x"})
    assert await emu.wait_for_idle_async(timeout=2)
    assert emu.disconnects == 0  # a cut by the emulator is not the client going away


async def test_client_leaving_a_slow_stream_counts_as_disconnect(emu: Emulator) -> None:
    emu.faults.token_delay = 0.1
    long = [{"role": "user", "content": "word " * 30}]  # 3 s of answer; the client leaves at once
    async with httpx.AsyncClient(base_url=emu.url) as http:
        async with http.stream("POST", "/api/chat", json={"model": CHAT, "messages": long}) as r:
            await anext(r.aiter_lines())
        assert await emu.wait_for_disconnect_async(timeout=2)
    assert emu.disconnects == 1
    assert await emu.wait_for_idle_async(timeout=2)


async def test_client_leaving_during_load_counts_as_disconnect(emu: Emulator) -> None:
    emu.faults.load_delay = 60
    async with httpx.AsyncClient(base_url=emu.url) as http:
        call = asyncio.create_task(http.post("/api/embed", json={"model": EMBEDDER, "input": "x"}))
        assert await emu.wait_for_active_async(1, timeout=2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await emu.wait_for_disconnect_async(timeout=2)  # long before the load ends
    assert await emu.wait_for_idle_async(timeout=2)


async def test_load_delay_holds_back_the_answer(emu: Emulator, client: ollama.AsyncClient) -> None:
    emu.faults.load_delay = 0.2
    started = time.monotonic()
    answer = await client.chat(model=CHAT, messages=MESSAGES)
    assert time.monotonic() - started >= 0.2
    assert answer.load_duration is not None and answer.load_duration >= 200_000_000


# -- recording, lifecycle -----------------------------------------------------------------


async def test_requests_are_recorded_and_reset(emu: Emulator, http: httpx.AsyncClient) -> None:
    await http.get("/api/tags")
    await http.post("/api/chat", json={"model": CHAT, "messages": MESSAGES, "stream": False})
    await http.post("/api/chat", content=b"not json")
    assert [(r.method, r.path) for r in emu.requests] == [
        ("GET", "/api/tags"),
        ("POST", "/api/chat"),
        ("POST", "/api/chat"),
    ]
    chats = emu.requests_to("/api/chat")
    assert chats[0].body == {"model": CHAT, "messages": MESSAGES, "stream": False}
    assert (chats[1].body, chats[1].raw_body) == (None, b"not json")

    emu.faults.busy = True
    emu.reset()
    assert emu.requests == [] and emu.faults == Faults() and emu.disconnects == 0


def test_restart_serves_the_same_port() -> None:
    with Emulator() as emu:
        url = emu.url
        assert httpx.get(f"{url}/").status_code == 200
        emu.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/")
        emu.restart()
        assert emu.url == url
        assert httpx.get(f"{url}/api/tags").status_code == 200


async def test_stopping_cuts_the_streams_in_flight(emu: Emulator) -> None:
    emu.faults.token_delay = 0.1
    body = {"model": CHAT, "messages": MESSAGES}
    async with httpx.AsyncClient(base_url=emu.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream("POST", "/api/chat", json=body) as response:
                lines = response.aiter_lines()
                await anext(lines)
                await asyncio.to_thread(emu.stop)
                async for _ in lines:
                    pass
    assert (emu.disconnects, emu.active_responses) == (0, 0)


def test_refused_url_refuses() -> None:
    url = refused_url()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    with ollama.Client(host=url) as client, pytest.raises(ConnectionError):
        client.list()


def test_custom_models() -> None:
    spec = ModelSpec(
        name="tiny", family="llama", parameter_size="1B", quantization_level="Q8_0", size=1
    )
    with Emulator(models=[spec]) as emu, ollama.Client(host=emu.url) as client:
        assert [m.model for m in client.list().models] == ["tiny:latest"]
        assert client.chat(model="tiny:latest", messages=MESSAGES).message.content == (
            generate(MESSAGES).content
        )


def test_threaded_server_runs_any_asgi_app() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    server = ThreadedServer(Starlette(routes=[Route("/", hello)]))
    with server:
        assert httpx.get(server.url).text == "hello"
        port = server.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")
    with ThreadedServer(Starlette(routes=[Route("/", hello)]), port=port) as again:
        assert httpx.get(again.url).text == "hello"


@pytest.mark.parametrize("after", [True, False], ids=["after-accept", "before-accept"])
def test_stop_cuts_a_connection_accepted_as_it_stops(after: bool) -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    with ThreadedServer(Starlette(routes=[Route("/", hello)])) as server:
        held = hold_stop_at_accept(server, after=after)
        with socket.create_connection((server.host, server.port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: emulator\r\n\r\n")
            assert held.wait(10)
            server.stop(abort=True)
            # Cut, or answered (accepted before the stop) and closed; never left open.
            client.settimeout(5)
            received = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := client.recv(1024):
                    received += chunk
    assert received == b"" or received.endswith(b"\r\n\r\nhello")


async def test_answer_tokens_streams_a_long_answer(
    emu: Emulator, client: ollama.AsyncClient
) -> None:
    emu.faults.answer_tokens = 5000
    parts = [
        part
        async for part in await client.chat(
            model=CHAT, messages=MESSAGES, stream=True, options={"num_predict": 100_000}
        )
    ]
    content = [p.message.content for p in parts if not p.done]
    assert len(content) == 5000
    echo = tokenize(generate(MESSAGES).content)
    assert content[: len(echo)] == echo and content[len(echo)] == echo[0]
    assert parts[-1].done and parts[-1].eval_count == 5000
    capped = await client.chat(model=CHAT, messages=MESSAGES, options={"num_predict": 7})
    assert capped.eval_count == 7 and capped.done_reason == "length"


async def test_hang_accepts_and_never_answers(emu: Emulator) -> None:
    emu.faults.hang = True
    async with httpx.AsyncClient(base_url=emu.url, timeout=0.3) as http:
        for path in ("/api/version", "/api/tags"):
            with pytest.raises(httpx.ReadTimeout):
                await http.get(path)
    assert await emu.wait_for_requests_async("/api/tags", 1, timeout=5)
    emu.faults.hang = False
    async with httpx.AsyncClient(base_url=emu.url, timeout=5) as http:
        assert (await http.get("/api/version")).status_code == 200
