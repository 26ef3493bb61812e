"""The emulator's /api/chat beyond plain text: tools, images, JSON schemas, logprobs.

Checked with the official ``ollama`` client and raw httpx for exact wire shapes.
Expectations come from ``ollama_emulator.content`` (and the modules it documents)
and from the requests the emulator recorded, never from magic numbers.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import ollama
import openai
import pytest
from pydantic import BaseModel, Field

from ollama_emulator import Emulator
from ollama_emulator.content import (
    answer_text,
    count_words,
    generate,
    thinking_text,
    tokenize,
)
from ollama_emulator.logprobs import token_logprob
from ollama_emulator.tools import tool_call_id
from ollama_emulator.wire import NO_VISION_MESSAGE

CHAT = "llama3.2"
THINKER = "gpt-oss:20b"
SEER = "gemma3:4b"
EMBEDDER = "bge-m3"
PROMPT = "what is the weather in Paris today"
MESSAGES = [{"role": "user", "content": PROMPT}]
IMAGES = [b"\x89PNG first picture", b"\xff\xd8 second picture"]


def get_weather(city: str, days: int) -> str:
    """Get the weather forecast for a city.

    Args:
      city: The city to forecast
      days: How many days ahead
    """
    return "sunny"


def get_time(zone: str) -> str:
    """Get the time in a time zone.

    Args:
      zone: The time zone
    """
    return "noon"


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[ollama.AsyncClient]:
    async with ollama.AsyncClient(host=emulator.url) as c:
        yield c


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emulator.url, timeout=10.0) as c:
        yield c


def sent(emulator: Emulator) -> dict[str, Any]:
    body = emulator.requests_to("/api/chat")[-1].body
    assert body is not None
    return body


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


# -- tools ------------------------------------------------------------------------------


async def test_a_tool_is_called_with_arguments_from_the_prompt(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    answer = await client.chat(model=CHAT, messages=MESSAGES, tools=[get_weather])
    assert answer.message.content == "" and answer.done_reason == "stop"
    (call,) = answer.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": PROMPT, "days": count_words(PROMPT)}
    body = sent(emulator)
    expected = generate(body["messages"], tools=body["tools"])
    assert answer.eval_count == expected.eval_count
    assert [c["function"]["arguments"] for c in expected.tool_calls] == [call.function.arguments]


async def test_the_tool_named_in_the_prompt_is_chosen(client: ollama.AsyncClient) -> None:
    asks = [{"role": "user", "content": "call get_time for UTC"}]
    answer = await client.chat(model=CHAT, messages=asks, tools=[get_weather, get_time])
    (call,) = answer.message.tool_calls or []
    assert (call.function.name, call.function.arguments) == (
        "get_time",
        {"zone": asks[0]["content"]},
    )


async def test_tool_calls_on_the_wire(http: httpx.AsyncClient) -> None:
    schema = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        },
    }
    body = {"model": CHAT, "messages": MESSAGES, "tools": [schema], "stream": False}
    single = (await http.post("/api/chat", json=body)).json()
    assert single["message"] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": tool_call_id("lookup", PROMPT),
                "function": {"index": 0, "name": "lookup", "arguments": {"query": PROMPT}},
            }
        ],
    }
    assert single["message"]["tool_calls"][0]["id"].startswith("call_")
    streamed = ndjson((await http.post("/api/chat", json=body | {"stream": True})).text)
    *calls, done = streamed
    assert [c["message"] for c in calls] == [single["message"]]
    assert (done["done"], done["done_reason"], done["message"]) == (
        True,
        "stop",
        {"role": "assistant", "content": ""},
    )


def test_a_thinking_model_thinks_then_calls_in_a_chunk_of_its_own(emulator: Emulator) -> None:
    with ollama.Client(host=emulator.url) as client:
        chunks = list(
            client.chat(model=THINKER, messages=MESSAGES, tools=[get_weather], stream=True)
        )
    thinking = [c for c in chunks if c.message.thinking]
    calling = [c for c in chunks if c.message.tool_calls]
    assert "".join(c.message.thinking or "" for c in thinking) == thinking_text(PROMPT)
    assert len(calling) == 1 and chunks.index(calling[0]) == len(thinking)
    assert calling[0].message.content == "" and not calling[0].done
    assert chunks[-1].done and chunks[-1].done_reason == "stop"


async def test_a_tool_result_is_answered(client: ollama.AsyncClient) -> None:
    first = await client.chat(model=CHAT, messages=MESSAGES, tools=[get_weather])
    result = "sunny, 24 degrees"
    history: list[Any] = [
        *MESSAGES,
        first.message,
        {"role": "tool", "content": result, "tool_name": "get_weather"},
    ]
    answer = await client.chat(model=CHAT, messages=history, tools=[get_weather])
    assert answer.message.tool_calls is None
    assert answer.message.content == answer_text(result, structured=False) == "Echo: " + result


async def test_tools_need_the_tools_capability(http: httpx.AsyncClient) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    for model, message in [
        (SEER, "registry.ollama.ai/library/gemma3:4b does not support tools"),
        (EMBEDDER, '"bge-m3" does not support chat'),
    ]:
        body = {"model": model, "messages": MESSAGES, "tools": [tool]}
        refused = await http.post("/api/chat", json=body)
        assert (refused.status_code, refused.json()) == (400, {"error": message})
    wrong = await http.post("/api/chat", json={"model": CHAT, "messages": MESSAGES, "tools": {}})
    assert wrong.status_code == 400 and "api.Tools" in wrong.json()["error"]


# -- images -----------------------------------------------------------------------------


async def test_images_reach_a_vision_model(client: ollama.AsyncClient) -> None:
    asks = [{"role": "user", "content": "what is in these?", "images": IMAGES}]
    answer = await client.chat(model=SEER, messages=asks)
    digests = [hashlib.sha256(image).hexdigest()[:8] for image in IMAGES]
    assert answer.message.content == f"Echo: what is in these? (2 images: {', '.join(digests)})"
    assert answer.message.content == answer_text(
        "what is in these?", structured=False, images=IMAGES
    )


async def test_a_model_without_vision_fails_in_its_runner(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    asks = [{"role": "user", "content": "look", "images": IMAGES[:1]}]
    with pytest.raises(ollama.ResponseError) as err:
        await client.chat(model=CHAT, messages=asks)
    assert (err.value.status_code, err.value.error) == (500, NO_VISION_MESSAGE)
    assert [m.model for m in (await client.ps()).models] == ["llama3.2:latest"]  # it loaded


async def test_invalid_base64_fails_the_body(http: httpx.AsyncClient) -> None:
    async def send(image: Any) -> httpx.Response:
        message = {"role": "user", "content": "x", "images": [image]}
        return await http.post("/api/chat", json={"model": SEER, "messages": [message]})

    bad = "aGVsbG8!d29ybGQ="
    refused = await send(bad)
    assert refused.status_code == 400
    assert refused.json() == {"error": f"illegal base64 data at input byte {bad.index('!')}"}
    unpadded = base64.b64encode(b"abcd").decode().rstrip("=")  # padding is required
    refused = await send(unpadded)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("illegal base64 data at input byte ")
    assert (await send(7)).status_code == 400


# -- structured output ------------------------------------------------------------------


class Place(BaseModel):
    name: str
    population: int = Field(ge=1000)


class Report(BaseModel):
    summary: str = Field(max_length=12)
    words: int
    sunny: bool
    places: list[Place]
    capital: Place
    note: str | None = None


@pytest.mark.parametrize("stream", [False, True])
async def test_a_schema_answer_validates(client: ollama.AsyncClient, stream: bool) -> None:
    schema = Report.model_json_schema()
    assert "$defs" in schema  # nested models are references
    if stream:
        parts = [
            p
            async for p in await client.chat(
                model=THINKER, messages=MESSAGES, format=schema, stream=True
            )
        ]
        content = "".join(p.message.content or "" for p in parts)
        assert "".join(p.message.thinking or "" for p in parts) == thinking_text(PROMPT)
    else:
        content = (
            await client.chat(model=THINKER, messages=MESSAGES, format=schema)
        ).message.content or ""
    report = Report.model_validate_json(content)
    assert report.summary == PROMPT[:12]
    assert report.words == count_words(PROMPT)
    assert report.capital.name == PROMPT and report.capital.population >= 1000
    assert len(report.places) == 1 and report.sunny
    assert content == answer_text(PROMPT, structured=True, schema=schema)


async def test_openai_parse_validates_through_the_service(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    """``chat.completions.parse`` sends OpenAI's strict schema; the answer parses."""
    base_url = str(rest.base_url).rstrip("/") + "/v1"
    async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0) as oai:
        done = await oai.chat.completions.parse(
            model=CHAT, messages=[{"role": "user", "content": PROMPT}], response_format=Report
        )
    report = done.choices[0].message.parsed
    assert report is not None and report.capital.name == PROMPT
    assert done.choices[0].message.content == answer_text(
        PROMPT, structured=True, schema=sent(emulator)["format"]
    )


# -- logprobs ---------------------------------------------------------------------------


async def test_logprobs_cover_every_generated_token(client: ollama.AsyncClient) -> None:
    answer = await client.chat(model=THINKER, messages=MESSAGES, logprobs=True, top_logprobs=3)
    expected = generate(MESSAGES, thinks=True)
    tokens = [*expected.thinking_tokens, *expected.content_tokens]
    assert [p.token for p in answer.logprobs or []] == tokens
    for entry in answer.logprobs or []:
        assert entry.logprob == token_logprob(entry.token) < 0
        top = entry.top_logprobs or []
        assert len(top) == 3 and top[0].token == entry.token
        assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
    plain = await client.chat(model=THINKER, messages=MESSAGES)
    assert plain.logprobs is None


async def test_streamed_logprobs_follow_their_chunks(http: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "messages": MESSAGES, "logprobs": True}
    *chunks, done = ndjson((await http.post("/api/chat", json=body)).text)
    for chunk in chunks:
        (entry,) = chunk["logprobs"]
        token = chunk["message"]["content"]
        assert entry == {
            "token": token,
            "logprob": token_logprob(token),
            "bytes": list(token.encode()),
        }
    assert [c["message"]["content"] for c in chunks] == tokenize(
        answer_text(PROMPT, structured=False)
    )
    assert "logprobs" not in done
    too_many = await http.post("/api/chat", json=body | {"top_logprobs": 21})
    assert (too_many.status_code, too_many.json()) == (
        400,
        {"error": "top_logprobs must be between 0 and 20"},
    )


async def test_roles_are_case_insensitive(client: ollama.AsyncClient) -> None:
    answer = await client.chat(model=CHAT, messages=[{"role": "USER", "content": PROMPT}])
    assert answer.message.content == answer_text(PROMPT, structured=False)
