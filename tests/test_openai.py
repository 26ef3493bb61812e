"""The OpenAI-compatible routes (/v1/chat/completions, /v1/models, /v1/embeddings),
driven by the official ``openai`` client against the real shim, server and emulator.

Expectations come from the emulator's deterministic content rules and from what it
recorded, never from magic numbers."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from openapi_spec_validator import validate

from ollama_emulator import Emulator
from ollama_emulator.content import (
    answer_text,
    count_prompt_tokens,
    cut_at_stop,
    embed_vector,
    thinking_text,
    tokenize,
)
from tests.conftest import RestStarter, Stack, StackFactory, embedding_dim, ollama_tags

CANCEL_REACHES_OLLAMA_WITHIN = 1.0  # seconds, the promise made to callers
TEXTS = ["first text", "второй текст", "third, a little longer text"]
SCHEMA = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}


def _base_url(rest: httpx.AsyncClient) -> str:
    return str(rest.base_url).rstrip("/") + "/v1"


@pytest.fixture
async def client(rest: httpx.AsyncClient) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=_base_url(rest), api_key="unused", max_retries=0, timeout=30.0
    ) as c:
        yield c


def _user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def _sent(emulator: Emulator, path: str = "/api/chat") -> dict[str, Any]:
    """The body of the one request the emulator received on ``path``."""
    (request,) = emulator.requests_to(path)
    assert request.body is not None
    return request.body


def _reasoning(obj: object) -> str | None:
    """``reasoning_content``, an extra field the openai models keep as an attribute."""
    value = getattr(obj, "reasoning_content", None)
    assert value is None or isinstance(value, str)
    return value


# --- chat ---------------------------------------------------------------------------


async def test_chat_answer_and_usage(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    text = "hello there my friend"
    before = int(time.time())
    completion = await client.chat.completions.create(model="llama3.2", messages=_user(text))
    sent = _sent(emulator)
    assert sent["messages"] == [{"role": "user", "content": text}]
    (choice,) = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == answer_text(text, structured=False)
    assert _reasoning(choice.message) is None
    assert choice.finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "llama3.2"
    assert before <= completion.created <= int(time.time())
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_prompt_tokens(sent["messages"])
    assert completion.usage.completion_tokens == len(tokenize(choice.message.content))
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_conversation_and_options_reach_ollama_in_order(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    earlier_thinking = cast(
        ChatCompletionMessageParam,
        {"role": "assistant", "content": "Echo: hi", "reasoning_content": "they said hi"},
    )
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        earlier_thinking,
        {
            "role": "user",
            "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}],
        },
    ]
    completion = await client.chat.completions.create(
        model="llama3.2",
        messages=messages,
        temperature=0.25,
        top_p=0.5,
        max_tokens=100,
        stop=["NEVER", "NOWHERE"],
        seed=42,
    )
    sent = _sent(emulator)
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Echo: hi", "thinking": "they said hi"},
        {"role": "user", "content": "part one\ntwo"},
    ]
    options = sent["options"]
    assert options["temperature"] == 0.25
    assert options["top_p"] == 0.5
    assert options["num_predict"] == 100
    assert options["stop"] == ["NEVER", "NOWHERE"]
    assert options["seed"] == 42
    assert completion.choices[0].message.content == answer_text("part one\ntwo", structured=False)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_prompt_tokens(sent["messages"])


async def test_stop_as_one_string(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    text = "stop right there please"
    completion = await client.chat.completions.create(
        model="llama3.2", messages=_user(text), stop=" there"
    )
    assert _sent(emulator)["options"]["stop"] == [" there"]
    expected = cut_at_stop(answer_text(text, structured=False), [" there"])
    assert completion.choices[0].message.content == expected == "Echo: stop right"
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
async def test_token_limit_ends_with_length(
    client: openai.AsyncOpenAI, emulator: Emulator, name: str
) -> None:
    text = "one two three four five six"
    create = client.chat.completions.create
    if name == "max_tokens":
        completion = await create(model="llama3.2", messages=_user(text), max_tokens=3)
    else:
        completion = await create(model="llama3.2", messages=_user(text), max_completion_tokens=3)
    assert _sent(emulator)["options"]["num_predict"] == 3
    (choice,) = completion.choices
    assert choice.finish_reason == "length"
    assert choice.message.content == "".join(tokenize(answer_text(text, structured=False))[:3])
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3


async def _stream(client: openai.AsyncOpenAI, **kw: Any) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(stream=True, **kw)
    return [chunk async for chunk in stream]


def _joined(chunks: list[ChatCompletionChunk], field: str = "content") -> str:
    parts: list[str | None] = []
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            parts.append(delta.content if field == "content" else _reasoning(delta))
    return "".join(p or "" for p in parts)


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_joins_to_the_answer(client: openai.AsyncOpenAI, include_usage: bool) -> None:
    text = "stream this answer to me please"
    whole = await client.chat.completions.create(model="llama3.2", messages=_user(text))
    chunks = await _stream(
        client,
        model="llama3.2",
        messages=_user(text),
        stream_options={"include_usage": include_usage},
    )
    assert _joined(chunks) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 5
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == "llama3.2" for c in chunks)
    if include_usage:
        *body, last = chunks
        assert last.choices == []
        assert last.usage == whole.usage
        assert all(c.usage is None for c in body)
    else:
        body = chunks
        assert all(c.usage is None for c in chunks)
    finishes = [c.choices[0].finish_reason for c in body]
    assert finishes[-1] == "stop"
    assert all(f is None for f in finishes[:-1])


async def test_reasoning_content_from_gpt_oss(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    text = "why is the sky blue"
    completion = await client.chat.completions.create(
        model="gpt-oss:20b", messages=_user(text), reasoning_effort="high"
    )
    assert _sent(emulator)["think"] == "high"
    message = completion.choices[0].message
    assert message.content == answer_text(text, structured=False)
    assert _reasoning(message) == thinking_text(text)

    chunks = await _stream(client, model="gpt-oss:20b", messages=_user(text))
    streamed = emulator.requests_to("/api/chat")[-1].body
    assert streamed is not None and "think" not in streamed
    assert _joined(chunks, "reasoning") == thinking_text(text)
    assert _joined(chunks) == answer_text(text, structured=False)


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, "json"),
        ({"type": "json_schema", "json_schema": {"name": "echo", "schema": SCHEMA}}, SCHEMA),
        ({"type": "text"}, None),
    ],
)
async def test_response_format_becomes_ollama_format(
    client: openai.AsyncOpenAI,
    emulator: Emulator,
    response_format: dict[str, Any],
    expected: object,
) -> None:
    text = "give me json"
    completion = await client.chat.completions.create(
        model="llama3.2", messages=_user(text), response_format=cast(Any, response_format)
    )
    assert _sent(emulator).get("format") == expected
    content = completion.choices[0].message.content
    assert content == answer_text(text, structured=expected is not None)
    if expected is not None:
        assert content is not None and json.loads(content) == {"echo": text}


# --- models ---------------------------------------------------------------------------


async def test_models_list_is_ollamas(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    models = [m async for m in client.models.list()]
    tags = ollama_tags(emulator)
    assert [m.id for m in models] == [t["name"] for t in tags]
    for model, tag in zip(models, tags, strict=True):
        assert model.object == "model"
        assert model.owned_by == "ollama"
        assert model.created == int(datetime.fromisoformat(tag["modified_at"]).timestamp())
    one = await client.models.retrieve("bge-m3")
    assert one.id == "bge-m3:latest"
    assert (await client.models.retrieve("gpt-oss:20b")).id == "gpt-oss:20b"
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("ghost")
    assert err.value.code == "model_not_found"


# --- embeddings -------------------------------------------------------------------------


def _floats(embedding: object) -> list[float]:
    """A vector the shim sent as base64 (little-endian float32) or as floats."""
    if isinstance(embedding, str):
        raw = base64.b64decode(embedding)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert isinstance(embedding, list)
    return [float(v) for v in embedding]


@pytest.mark.parametrize("encoding", ["float", "base64", None])
@pytest.mark.parametrize("texts", [TEXTS[:1], TEXTS], ids=["single", "batch"])
async def test_embeddings(
    client: openai.AsyncOpenAI,
    emulator: Emulator,
    stack: Stack,
    encoding: str | None,
    texts: list[str],
) -> None:
    model = stack.settings.embedding_model
    given: str | list[str] = texts[0] if len(texts) == 1 else texts
    if encoding == "float":
        reply = await client.embeddings.create(model=model, input=given, encoding_format="float")
    elif encoding == "base64":
        reply = await client.embeddings.create(model=model, input=given, encoding_format="base64")
    else:  # the client asks for base64 and decodes it itself
        reply = await client.embeddings.create(model=model, input=given)
    assert _sent(emulator, "/api/embed")["input"] == texts
    dims = embedding_dim(emulator, model)
    assert reply.object == "list"
    assert [d.index for d in reply.data] == list(range(len(texts)))
    for item, text in zip(reply.data, texts, strict=True):
        assert item.object == "embedding"
        raw = cast(object, item.embedding)
        assert isinstance(raw, str) == (encoding == "base64")
        vector = _floats(raw)
        assert len(vector) == dims
        assert vector == pytest.approx(embed_vector(text, dims), abs=1e-6)
    assert reply.usage.prompt_tokens == sum(len(t.split()) for t in texts)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens


# --- errors -------------------------------------------------------------------------


def _error_body(err: openai.APIStatusError) -> dict[str, Any]:
    body = err.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "code", "param"}
    return body


async def test_unknown_model_is_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="ghost", messages=_user("hi"))
    body = _error_body(err.value)
    assert body["type"] == "not_found_error"
    assert body["code"] == "model_not_found"
    assert body["param"] == "model"
    assert "ghost" in body["message"]
    with pytest.raises(openai.NotFoundError):  # before the first byte: still a 404
        await client.chat.completions.create(model="ghost", messages=_user("hi"), stream=True)
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="ghost", input="x")


async def test_invalid_values_are_bad_requests(
    client: openai.AsyncOpenAI, emulator: Emulator, stack: Stack
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(model="llama3.2", messages=_user("hi"), temperature=5)
    body = _error_body(err.value)
    assert (body["type"], body["code"], body["param"]) == (
        "invalid_request_error",
        "invalid_argument",
        "temperature",
    )
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(model="llama3.2", messages=[])
    assert _error_body(err.value)["param"] == "messages"
    too_many = stack.settings.max_tokens + 1
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model="llama3.2", messages=_user("hi"), max_completion_tokens=too_many
        )
    assert _error_body(err.value)["param"] == "max_completion_tokens"
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="bge-m3", input=[])
    assert _error_body(err.value)["param"] == "input"
    assert emulator.requests_to("/api/chat") == []
    assert emulator.requests_to("/api/embed") == []


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], **fields}


def _parts(*parts: object) -> dict[str, Any]:
    """A chat body whose one user message has these content parts."""
    return _chat(messages=[{"role": "user", "content": list(parts)}])


CHAT_SHAPES: list[tuple[dict[str, Any], str]] = [
    ({"model": "llama3.2"}, "messages"),
    (_chat(messages="hi"), "messages"),
    (_chat(messages=["hi"]), "messages[0]"),
    (_chat(messages=[{"content": "hi"}]), "messages[0].role"),
    (_chat(messages=[{"role": "robot", "content": "hi"}]), "messages[0].role"),
    (_chat(messages=[{"role": "user"}]), "messages[0].content"),
    (_parts({"type": "text", "text": 5}), "messages[0].content[0].text"),
    (_parts(5), "messages[0].content[0]"),
    (
        _parts({"type": "image_url", "image_url": {"url": "x"}}),
        "messages[0].content[0].image_url.url",
    ),
    (_parts({"type": "input_audio", "input_audio": {}}), "messages[0].content[0].type"),
    (
        _chat(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]),
        "messages[1].role",
    ),
    (_chat(model=5), "model"),
    (_chat(temperature="hot"), "temperature"),
    (_chat(max_tokens=1.5), "max_tokens"),
    (_chat(seed=2**70), "seed"),
    (_chat(stop=[1]), "stop"),
    (_chat(stream="yes"), "stream"),
    (_chat(stream=True, stream_options={"include_usage": "yes"}), "stream_options"),
    (_chat(stream=True, stream_options=True), "stream_options"),
    (_chat(n=2), "n"),
    (_chat(tools=[{"type": "function"}]), "tools[0]"),
    (_chat(tools="search"), "tools"),
    (_chat(tool_choice=5), "tool_choice"),
    (_chat(reasoning_effort="extreme"), "reasoning_effort"),
    (_chat(response_format={"type": "xml"}), "response_format.type"),
    (
        _chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
        "response_format.json_schema.schema",
    ),
]
EMBED_SHAPES: list[tuple[dict[str, Any], str]] = [
    ({"model": "bge-m3"}, "input"),
    ({"input": [1, 2, 3]}, "input"),
    ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
    ({"input": "x", "dimensions": 8}, "dimensions"),
]


@pytest.mark.parametrize(
    ("path", "payload", "param"),
    [("/v1/chat/completions", *case) for case in CHAT_SHAPES]
    + [("/v1/embeddings", *case) for case in EMBED_SHAPES],
)
async def test_wrong_shapes_are_400_naming_the_field(
    rest: httpx.AsyncClient, emulator: Emulator, path: str, payload: dict[str, Any], param: str
) -> None:
    r = await rest.post(path, json=payload)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(f"{param}: ")
    assert emulator.requests_to("/api/chat") == []
    assert emulator.requests_to("/api/embed") == []


@pytest.mark.parametrize(
    ("content", "code"), [(b"{not json", "malformed_json"), (b"[1, 2]", "invalid_body")]
)
async def test_malformed_json_is_400(rest: httpx.AsyncClient, content: bytes, code: str) -> None:
    r = await rest.post(
        "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", code)


async def test_body_over_the_limit_is_413(stack: Stack, start_shim: Callable[..., str]) -> None:
    url = start_shim(replace(stack.settings, grpc_target=stack.target, max_request_bytes=2048))
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as c:
        with pytest.raises(openai.APIStatusError) as err:
            await c.chat.completions.create(model="llama3.2", messages=_user("word " * 1000))
    assert err.value.status_code == 413
    body = _error_body(err.value)
    assert (body["type"], body["code"]) == ("invalid_request_error", "payload_too_large")


async def test_error_mid_stream_reaches_the_client(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    emulator.faults.error_after_chunks = 2
    text = "a b c d e f"
    stream = await client.chat.completions.create(
        model="llama3.2", messages=_user(text), stream=True
    )
    received: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIError) as err:
        async for chunk in stream:
            received.append(chunk)
    assert not isinstance(err.value, openai.APIStatusError)  # an event, not a status
    assert _joined(received) == "".join(tokenize(answer_text(text, structured=False))[:2])
    assert "mid-answer" in err.value.message
    assert emulator.faults.error_message in err.value.message
    assert isinstance(err.value.body, dict)
    assert (err.value.body["type"], err.value.body["code"]) == ("api_error", "ollama_error")


async def test_client_leaving_a_stream_closes_the_ollama_request(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    emulator.faults.token_delay = 0.2
    stream = await client.chat.completions.create(
        model="llama3.2", messages=_user("one two three four five six seven eight"), stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.close()
    assert await emulator.wait_for_disconnect_async(timeout=CANCEL_REACHES_OLLAMA_WITHIN)


async def test_client_leaving_a_plain_chat_closes_the_ollama_request(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    emulator.faults.load_delay = 30.0
    request = asyncio.ensure_future(
        client.chat.completions.create(model="llama3.2", messages=_user("hi"))
    )
    assert await emulator.wait_for_requests_async("/api/chat", timeout=5.0)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert await emulator.wait_for_disconnect_async(timeout=CANCEL_REACHES_OLLAMA_WITHIN)


# --- the OpenAPI document -----------------------------------------------------------------


async def test_openapi_document_lists_the_openai_routes(rest: httpx.AsyncClient) -> None:
    document = (await rest.get("/openapi.json")).json()
    validate(document)
    paths = document["paths"]
    assert set(paths["/v1/chat/completions"]) == {"post"}
    assert set(paths["/v1/embeddings"]) == {"post"}
    assert set(paths["/v1/models"]) == {"get"}
    schemas = document["components"]["schemas"]
    request = schemas["OpenAIChatRequest"]
    assert {"messages", "response_format", "reasoning_effort"} <= set(request["properties"])
    assert "OpenAIError" in schemas


async def test_unknown_v1_path_answers_in_openai_shape(rest: httpx.AsyncClient) -> None:
    r = await rest.get("/v1/nowhere")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"
    wrong = await rest.get("/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["message"]
    assert "POST" in wrong.headers["allow"]


async def test_errors_carry_the_servers_backoff_and_challenge(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator
) -> None:
    stack = await make_stack(max_concurrent=1, max_queue=0, queue_timeout=30.0)
    base = await serve_rest(stack)
    emulator.faults.token_delay = 0.2
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "a b c d e f"}]}
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as held,
    ):
        lines = held.aiter_lines()  # kept: a dropped iterator closes the response
        await anext(lines)
        refused = await http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "15"  # the server's hint, as on /chat
    keyed = await make_stack(api_keys=("k",))
    keyed_base = await serve_rest(keyed)
    async with httpx.AsyncClient(base_url=keyed_base, timeout=30) as http:
        denied = await http.post("/v1/chat/completions", json=body)
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert denied.json()["error"]["type"] == "authentication_error"
