"""Invalid requests get INVALID_ARGUMENT with a message naming the field, and never
reach Ollama."""

from __future__ import annotations

import grpc
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import Stack

INVALID = [
    (pb.ChatRequest(message=""), "message"),
    (pb.ChatRequest(message="   "), "message"),
    (pb.ChatRequest(message="hi", max_tokens=999999), "max_tokens"),
    (pb.ChatRequest(message="hi", max_tokens=-5), "max_tokens"),
    (pb.ChatRequest(message="hi", max_tokens=0), "max_tokens"),
    (pb.ChatRequest(message="hi", temperature=2.5), "temperature"),
    (pb.ChatRequest(message="hi", temperature=-0.1), "temperature"),
    (pb.ChatRequest(message="hi", temperature=float("nan")), "temperature"),
    (pb.ChatRequest(message="hi", top_p=0), "top_p"),
    (pb.ChatRequest(message="hi", top_p=1.5), "top_p"),
    (pb.ChatRequest(message="hi", history=[pb.ChatMessage(role="wizard", content="x")]), "role"),
    (pb.ChatRequest(message="hi", format="yaml please"), "format"),
    (pb.ChatRequest(message="hi", format="[1, 2]"), "format"),
    (pb.ChatRequest(message="hi", think="very"), "think"),
    (pb.ChatRequest(message="hi", stop=[""]), "stop"),
]


@pytest.mark.parametrize(("request_", "field"), INVALID)
async def test_invalid_chat_is_rejected(
    stack: Stack, emulator: Emulator, request_: pb.ChatRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.value.details() or "")
    assert emulator.requests_to("/api/chat") == []


async def test_max_tokens_at_the_limit_is_accepted(stack: Stack) -> None:
    limit = stack.settings.max_tokens
    reply = await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2", max_tokens=limit))
    assert reply.response


async def test_json_schema_format_is_passed_as_an_object(stack: Stack, emulator: Emulator) -> None:
    schema = '{"type": "object", "properties": {"echo": {"type": "string"}}}'
    reply = await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2", format=schema))
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert sent.body["format"] == {"type": "object", "properties": {"echo": {"type": "string"}}}
    assert reply.response.startswith("{")
