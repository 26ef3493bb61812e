"""Tools, images and structured output through every face, with the real clients: a
full tool round trip (call, the tool's answer, the final answer) with the official
``openai`` client streamed and not, images as data: URLs (http(s) URLs only from the
allowed hosts), a schema-constrained answer; the same over gRPC (grpcurl included)
and the native REST routes. The Ollama face passes them through (test_ollama_face)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import openai
import pytest
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator, ThreadedServer
from tests.conftest import WEATHER, RestStarter, Stack, StackFactory, grpcurl

PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}},
    "required": ["city", "sunny"],
}


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


@pytest.fixture
async def oai(rest: httpx.AsyncClient) -> AsyncIterator[openai.AsyncOpenAI]:
    base = str(rest.base_url).rstrip("/") + "/v1"
    async with openai.AsyncOpenAI(base_url=base, api_key="unused", max_retries=0) as client:
        yield client


def sent(emulator: Emulator, path: str = "/api/chat") -> dict[str, Any]:
    body = emulator.requests_to(path)[-1].body
    assert body is not None
    return body


# --- OpenAI ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_tool_round_trip(
    oai: openai.AsyncOpenAI, emulator: Emulator, stream: bool
) -> None:
    question: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        stream_call = await oai.chat.completions.create(
            model="llama3.2", messages=question, tools=[WEATHER], stream=True
        )
        chunks = [c async for c in stream_call]
        deltas = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or [] if c.choices]
        assert len(deltas) == 1 and deltas[0].index == 0 and deltas[0].id
        call_id, name = deltas[0].id, deltas[0].function.name  # type: ignore[union-attr]
        arguments = deltas[0].function.arguments  # type: ignore[union-attr]
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finishes[-1] == "tool_calls"
    else:
        asked = await oai.chat.completions.create(
            model="llama3.2", messages=question, tools=[WEATHER]
        )
        choice = asked.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        (call,) = choice.message.tool_calls or []
        call_id, name, arguments = call.id, call.function.name, call.function.arguments  # type: ignore[union-attr]
    assert name == "get_weather"
    assert set(json.loads(arguments or "{}")) == {"city"}
    ollama_call = emulator.requests_to("/api/chat")[-1]
    assert ollama_call.body is not None and ollama_call.body["tools"][0]["function"]["name"] == (
        "get_weather"
    )
    answered = await oai.chat.completions.create(
        model="llama3.2",
        messages=[
            *question,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments or "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "18 degrees, sunny"},
        ],
        tools=[WEATHER],
    )
    assert answered.choices[0].message.content == "Echo: 18 degrees, sunny"
    assert answered.choices[0].finish_reason == "stop"
    turns = sent(emulator)["messages"]
    assert turns[-1] == {
        "role": "tool",
        "content": "18 degrees, sunny",
        "tool_name": name,
        "tool_call_id": call_id,
    }
    assert turns[-2]["tool_calls"][0]["function"]["arguments"] == json.loads(arguments or "{}")


async def test_tool_choice_narrows_what_ollama_is_offered(
    oai: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    other: Any = {**WEATHER, "function": {**WEATHER["function"], "name": "get_time"}}
    named: Any = {"type": "function", "function": {"name": "get_time"}}
    unknown: Any = {"type": "function", "function": {"name": "nope"}}
    question: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    await oai.chat.completions.create(
        model="llama3.2",
        messages=question,
        tools=[WEATHER, other],
        tool_choice=named,
    )
    assert [t["function"]["name"] for t in sent(emulator)["tools"]] == ["get_time"]
    plain = await oai.chat.completions.create(
        model="llama3.2", messages=question, tools=[WEATHER], tool_choice="none"
    )
    assert "tools" not in sent(emulator) and plain.choices[0].message.tool_calls is None
    with pytest.raises(openai.BadRequestError) as err:
        await oai.chat.completions.create(
            model="llama3.2",
            messages=question,
            tools=[WEATHER],
            tool_choice=unknown,
        )
    assert "tool_choice" in str(err.value)


async def test_openai_image_as_a_data_url(oai: openai.AsyncOpenAI, emulator: Emulator) -> None:
    content: list[Any] = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": data_url(PICTURE)}},
    ]
    answer = await oai.chat.completions.create(
        model="gemma3:4b", messages=[{"role": "user", "content": content}]
    )
    assert answer.choices[0].message.content
    images = sent(emulator)["messages"][-1]["images"]
    assert [base64.b64decode(i) for i in images] == [PICTURE]  # bare base64 to Ollama
    with pytest.raises(openai.BadRequestError) as err:  # a model that cannot see
        await oai.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": content}]
        )
    assert "vision" in str(err.value)


@pytest.fixture
def image_host() -> Any:
    async def picture(request: Any) -> Response:
        return Response(PICTURE, media_type="image/png")

    async def page(request: Any) -> Response:
        return Response("<html></html>", media_type="text/html")

    app = Starlette(routes=[Route("/cat.png", picture), Route("/page", page)])
    with ThreadedServer(app) as server:
        yield server


async def test_http_image_urls_only_from_allowed_hosts(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator, image_host: Any
) -> None:
    stack = await make_stack()
    content: list[Any] = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"{image_host.url}/cat.png"}},
    ]
    messages: list[Any] = [{"role": "user", "content": content}]
    closed = await serve_rest(stack)
    async with openai.AsyncOpenAI(base_url=closed + "/v1", api_key="x", max_retries=0) as oai:
        with pytest.raises(openai.BadRequestError) as err:
            await oai.chat.completions.create(model="gemma3:4b", messages=messages)
    assert "LLM_IMAGE_URL_HOSTS" in str(err.value)
    assert emulator.requests_to("/api/chat") == []
    opened = await serve_rest(stack, image_url_hosts=("127.0.0.1",))
    async with openai.AsyncOpenAI(base_url=opened + "/v1", api_key="x", max_retries=0) as oai:
        answer = await oai.chat.completions.create(model="gemma3:4b", messages=messages)
        assert answer.choices[0].message.content
        assert [base64.b64decode(i) for i in sent(emulator)["messages"][-1]["images"]] == [PICTURE]
        content[1]["image_url"]["url"] = f"{image_host.url}/page"
        with pytest.raises(openai.BadRequestError) as err:
            await oai.chat.completions.create(model="gemma3:4b", messages=messages)
    assert "not an image" in str(err.value)


async def test_openai_json_schema_answer(oai: openai.AsyncOpenAI, emulator: Emulator) -> None:
    answer = await oai.chat.completions.create(
        model="llama3.2",
        messages=[{"role": "user", "content": "Paris"}],
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}},
    )
    data = json.loads(answer.choices[0].message.content or "")
    assert set(data) == {"city", "sunny"} and isinstance(data["sunny"], bool)
    assert sent(emulator)["format"] == SCHEMA  # as data, unchanged


# --- gRPC -----------------------------------------------------------------------------


def tool() -> pb.Tool:
    message = pb.Tool()
    json_format.ParseDict(
        {
            "type": "function",
            "name": WEATHER["function"]["name"],
            "description": WEATHER["function"]["description"],
            "parameters": WEATHER["function"]["parameters"],
        },
        message,
    )
    return message


async def test_grpc_tool_round_trip_image_and_schema(stack: Stack, emulator: Emulator) -> None:
    asked = await stack.stub.Chat(
        pb.ChatRequest(message="weather in Paris?", model="llama3.2", tools=[tool()])
    )
    (call,) = asked.tool_calls
    assert call.name == "get_weather" and call.id
    conversation = [
        pb.ChatMessage(role="user", content="weather in Paris?"),
        pb.ChatMessage(role="assistant", tool_calls=[call]),
        pb.ChatMessage(role="tool", content="rain", tool_call_id=call.id),
    ]
    answered = await stack.stub.Chat(
        pb.ChatRequest(messages=conversation, model="llama3.2", tools=[tool()])
    )
    assert answered.response == "Echo: rain"
    assert sent(emulator)["messages"][-1]["tool_name"] == "get_weather"
    events = [
        e
        async for e in stack.stub.ChatStream(
            pb.ChatStreamRequest(
                request=pb.ChatRequest(message="weather?", model="llama3.2", tools=[tool()])
            )
        )
    ]
    assert [c.name for e in events for c in e.tool_calls] == ["get_weather"]
    seen = await stack.stub.Chat(
        pb.ChatRequest(message="what is this?", model="gemma3:4b", images=[PICTURE])
    )
    assert seen.response
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(
            pb.ChatRequest(message="what is this?", model="llama3.2", images=[PICTURE])
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "vision" in (err.value.details() or "")
    shaped = pb.ChatRequest(message="Paris", model="llama3.2")
    shaped.output_format.struct_value.update(SCHEMA)
    reply = await stack.stub.Chat(shaped)
    assert set(json.loads(reply.response)) == {"city", "sunny"}


async def test_grpcurl_calls_generate_and_a_chat_with_tools(stack: Stack) -> None:
    async def call(method: str, body: dict[str, Any]) -> dict[str, Any]:
        done = await asyncio.to_thread(
            subprocess.run,
            [
                grpcurl(),
                "-plaintext",
                "-d",
                json.dumps(body),
                stack.target,
                f"llm.v1.LlmService/{method}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    generated = await call("Generate", {"model": "llama3.2", "prompt": "one two"})
    assert generated["response"] == "Echo: one two" and generated["done_reason"] == "stop"
    chat = await call(
        "Chat",
        {
            "model": "llama3.2",
            "message": "weather in Paris?",
            "tools": [json_format.MessageToDict(tool(), preserving_proto_field_name=True)],
        },
    )
    assert chat["tool_calls"][0]["name"] == "get_weather"


# --- native REST ----------------------------------------------------------------------


async def test_native_rest_takes_tools_images_and_a_format(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    native_tool = json_format.MessageToDict(tool(), preserving_proto_field_name=True)
    asked = await rest.post(
        "/chat", json={"message": "weather in Paris?", "model": "llama3.2", "tools": [native_tool]}
    )
    assert asked.status_code == 200, asked.text
    (call,) = asked.json()["tool_calls"]
    assert call["name"] == "get_weather" and call["arguments"]
    seen = await rest.post(
        "/chat",
        json={
            "message": "what is this?",
            "model": "gemma3:4b",
            "images": [base64.b64encode(PICTURE).decode()],
        },
    )
    assert seen.status_code == 200
    shaped = await rest.post(
        "/chat", json={"message": "Paris", "model": "llama3.2", "format": SCHEMA}
    )
    assert set(json.loads(shaped.json()["response"])) == {"city", "sunny"}
    assert sent(emulator)["format"] == SCHEMA
    streamed = await rest.post(
        "/chat/stream",
        json={"message": "weather?", "model": "llama3.2", "tools": [native_tool]},
    )
    events = [
        json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: ")
    ]
    assert [c["name"] for e in events for c in e.get("tool_calls", [])] == ["get_weather"]
