"""Chat over gRPC against the emulator: what Ollama receives and what the caller gets."""

from __future__ import annotations

import grpc
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator, refused_url
from ollama_emulator.content import count_prompt_tokens
from tests.conftest import Stack, StackFactory


async def test_chat_sends_system_history_and_message_in_order(
    stack: Stack, emulator: Emulator
) -> None:
    request = pb.ChatRequest(
        message="And the capital of Italy?",
        model="llama3.2",
        system="Answer briefly.",
        history=[
            pb.ChatMessage(role="user", content="Capital of France?"),
            pb.ChatMessage(role="assistant", content="Paris."),
        ],
    )
    reply = await stack.stub.Chat(request)

    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And the capital of Italy?"},
    ]
    assert sent.body["stream"] is False
    assert reply.response == "Echo: And the capital of Italy?"
    assert reply.model == "llama3.2"
    assert reply.done_reason == "stop"
    assert reply.timestamp.seconds > 0


async def test_chat_options_default_from_settings(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(max_tokens=321, temperature=0.3, top_p=0.55)
    await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert sent.body["options"] == {"num_predict": 321, "temperature": 0.3, "top_p": 0.55}


async def test_chat_options_per_request(stack: Stack, emulator: Emulator) -> None:
    await stack.stub.Chat(
        pb.ChatRequest(
            message="hi",
            model="llama3.2",
            max_tokens=50,
            temperature=1.5,
            top_p=0.2,
            stop=["\n\n"],
            seed=42,
            format="json",
        )
    )
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert sent.body["options"] == {
        "num_predict": 50,
        "temperature": 1.5,
        "top_p": 0.2,
        "stop": ["\n\n"],
        "seed": 42,
    }
    assert sent.body["format"] == "json"


async def test_token_counts_are_ollamas_own(stack: Stack, emulator: Emulator) -> None:
    history = [pb.ChatMessage(role="user", content="one two three")]
    reply = await stack.stub.Chat(
        pb.ChatRequest(message="four five", model="llama3.2", history=history)
    )
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    expected_prompt = count_prompt_tokens(sent.body["messages"])
    assert reply.prompt_tokens == expected_prompt
    # The emulator answers one token per word of "Echo: four five".
    assert reply.response_tokens == len(reply.response.split())
    assert reply.total_tokens == reply.prompt_tokens + reply.response_tokens


async def test_max_tokens_cuts_the_answer_with_done_reason_length(stack: Stack) -> None:
    reply = await stack.stub.Chat(
        pb.ChatRequest(message="a b c d e f g h", model="llama3.2", max_tokens=3)
    )
    assert reply.response_tokens == 3
    assert reply.done_reason == "length"
    assert reply.response == "Echo: a b"


async def test_reasoning_model_returns_thinking_apart(stack: Stack, emulator: Emulator) -> None:
    reply = await stack.stub.Chat(
        pb.ChatRequest(message="why is the sky blue", model="gpt-oss:20b", think="high")
    )
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert sent.body["think"] == "high"
    assert reply.response == "Echo: why is the sky blue"
    assert reply.thinking == "Thinking about: why is the sky blue"
    assert reply.response_tokens == len(reply.response.split()) + len(reply.thinking.split())


async def test_thinking_history_goes_back_to_the_model(stack: Stack, emulator: Emulator) -> None:
    history = [
        pb.ChatMessage(role="user", content="q"),
        pb.ChatMessage(role="assistant", content="a", thinking="because"),
    ]
    await stack.stub.Chat(pb.ChatRequest(message="next", model="gpt-oss:20b", history=history))
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None
    assert sent.body["messages"][1] == {"role": "assistant", "content": "a", "thinking": "because"}


async def test_default_model_is_used_when_none_is_given(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(default_model="llama3.2")
    reply = await stack.stub.Chat(pb.ChatRequest(message="hi"))
    assert reply.model == "llama3.2"
    (sent,) = emulator.requests_to("/api/chat")
    assert sent.body is not None and sent.body["model"] == "llama3.2"


async def test_unknown_model_is_not_found_and_named(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="no-such-model"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in (err.value.details() or "")


async def test_embedding_model_cannot_chat(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="bge-m3"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bge-m3" in (err.value.details() or "")


async def test_ollama_down_is_unavailable(make_stack: StackFactory) -> None:
    stack = await make_stack(refused_url())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unreachable" in (err.value.details() or "")


async def test_ollama_busy_is_resource_exhausted(stack: Stack, emulator: Emulator) -> None:
    emulator.faults.busy = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "busy" in (err.value.details() or "")


async def test_ollama_500_is_internal_with_its_message(stack: Stack, emulator: Emulator) -> None:
    emulator.faults.error_status = 500
    emulator.faults.error_message = "llama runner process has terminated"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "llama runner process has terminated" in (err.value.details() or "")


async def test_slow_ollama_past_the_deadline(stack: Stack, emulator: Emulator) -> None:
    """The caller's deadline is honoured, and the Ollama request is closed with it."""
    emulator.faults.load_delay = 30.0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"), timeout=0.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await emulator.wait_for_disconnect_async(timeout=5.0)


async def test_slow_ollama_past_ollama_timeout(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(timeout=0.3)
    emulator.faults.load_delay = 30.0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "0.3 s" in (err.value.details() or "")
    assert "llama3.2" in (err.value.details() or "")
