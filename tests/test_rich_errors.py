"""gRPC's rich error model, read as any gRPC client reads it: ``grpc_status.rpc_status``
(sync and aio) over a real channel, and grpcurl. Every error carries a
``google.rpc.Status`` in ``grpc-status-details-bin`` with ErrorInfo (reason, domain,
code, request id), RetryInfo when a retry is worth it, BadRequest for an invalid field;
the in-process stub carries the same, and the OpenAI face names the same ``param`` in
both REST modes."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from ollama_emulator import Emulator
from rest_shim.openai_params import openai_param
from server.rich_errors import DOMAIN
from tests.conftest import LocalShimStarter, Stack, StackFactory, bearer, grpcurl, trailer
from tests.quota_callers import LIMITED_KEY, one_generation_running

MODEL = "llama3.2"
TOO_MANY = 1_000_000
# A PNG's first bytes: the service checks none of it, the model's capabilities refuse it.
IMAGE = b"\x89PNG\r\n\x1a\n"


def _unpacked(status: Status) -> dict[type[Message], Message]:
    """The status's details by type; each type at most once."""
    found: dict[type[Message], Message] = {}
    for detail in status.details:
        for kind in (ErrorInfo, RetryInfo, BadRequest):
            message = kind()
            if detail.Unpack(message):  # False for another type
                assert kind not in found
                found[kind] = message
    assert len(found) == len(status.details), status
    return found


def _status(err: grpc.aio.AioRpcError) -> Status:
    # AioRpcError answers grpc.Call's methods; from_call checks code and message too
    status = rpc_status.from_call(cast(grpc.Call, err))
    assert isinstance(status, Status)
    return status


async def _aio_status(call: grpc.aio.Call) -> Status:
    """``grpc_status.rpc_status.aio.from_call``, which its type stubs do not know."""
    status = await rpc_status.aio.from_call(call)  # type: ignore[attr-defined]
    assert isinstance(status, Status)
    return status


def _error_info(status: Status, reason: str) -> ErrorInfo:
    info = _unpacked(status)[ErrorInfo]
    assert isinstance(info, ErrorInfo)
    assert (info.reason, info.domain) == (reason, DOMAIN)
    assert info.metadata["code"] == reason.lower()
    return info


# --- over a real channel -------------------------------------------------------------


async def test_an_invalid_field_is_a_bad_request_read_by_a_plain_grpc_client(
    stack: Stack,
) -> None:
    """The synchronous grpc API and grpc_status, as a client outside this project does."""
    request = pb.ChatRequest(message="hi", model=MODEL, max_tokens=TOO_MANY)

    def call() -> grpc.RpcError:
        with grpc.insecure_channel(stack.target, options=[("grpc.enable_http_proxy", 0)]) as ch:
            stub = pb_grpc.LlmServiceStub(ch)
            try:
                stub.Chat(request, timeout=10, metadata=(("x-request-id", "req-field-1"),))
            except grpc.RpcError as exc:
                return exc
        raise AssertionError("the call succeeded")

    err = await asyncio.to_thread(call)
    assert isinstance(err, grpc.Call)
    status = rpc_status.from_call(err)
    assert isinstance(status, Status)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    details = _unpacked(status)
    assert set(details) == {ErrorInfo, BadRequest}  # nothing to retry
    info = _error_info(status, "INVALID_ARGUMENT")
    assert info.metadata["request_id"] == "req-field-1"
    bad = details[BadRequest]
    assert isinstance(bad, BadRequest)
    (violation,) = bad.field_violations
    assert violation.field == "max_tokens"
    assert violation.description == err.details() == status.message
    trailers = dict(err.trailing_metadata() or ())
    assert trailers["llm-error-code"] == "invalid_argument"
    assert trailers["llm-error-field"] == "max_tokens"


@pytest.mark.parametrize(
    ("turns", "field"),
    [
        (
            [
                pb.ChatMessage(role="user", content="hi"),
                pb.ChatMessage(role="user", content="again", tool_calls=[pb.ToolCall(name="f")]),
            ],
            "messages[1].tool_calls",
        ),
        ([pb.ChatMessage(role="robot", content="hi")], "messages[0].role"),
    ],
)
async def test_the_field_is_the_path_the_caller_sent(
    stack: Stack, emulator: Emulator, turns: list[pb.ChatMessage], field: str
) -> None:
    """A unary call names the field in its request; a stream, in the ``request`` it
    wraps (``grpc_status.rpc_status.aio`` on the call)."""
    chat = pb.ChatRequest(model=MODEL, messages=turns)
    unary = stack.stub.Chat(chat)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await unary
    status = await _aio_status(unary)
    bad = _unpacked(status)[BadRequest]
    assert isinstance(bad, BadRequest)
    assert [v.field for v in bad.field_violations] == [field]
    assert trailer(err.value, "llm-error-field") == field

    stream = stack.stub.ChatStream(pb.ChatStreamRequest(request=chat))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stream.read()
    status = await _aio_status(stream)
    bad = _unpacked(status)[BadRequest]
    assert isinstance(bad, BadRequest)
    assert [v.field for v in bad.field_violations] == [f"request.{field}"]
    assert trailer(err.value, "llm-error-field") == f"request.{field}"
    assert emulator.requests_to("/api/chat") == []


async def test_fields_of_embeddings_and_options(stack: Stack) -> None:
    cases: list[tuple[Awaitable[Any], str]] = [
        (stack.stub.Embed(pb.EmbedRequest(input=["a", "b", " "], model="bge-m3")), "input[2]"),
        (
            stack.stub.Chat(
                pb.ChatRequest(message="hi", model=MODEL, options=pb.ModelOptions(num_ctx=-1))
            ),
            "options.num_ctx",
        ),
        (
            stack.stub.Chat(
                pb.ChatRequest(
                    message="hi", model=MODEL, options=pb.ModelOptions(repeat_penalty=math.inf)
                )
            ),
            "options.repeat_penalty",
        ),
    ]
    for call, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        bad = _unpacked(_status(err.value))[BadRequest]
        assert isinstance(bad, BadRequest)
        assert [v.field for v in bad.field_violations] == [field]


async def test_a_quota_refusal_says_when_to_retry(
    make_stack: StackFactory, emulator: Emulator, tmp_path: Path
) -> None:
    stack, running = await one_generation_running(make_stack, emulator, tmp_path)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.stub.Chat(
                pb.ChatRequest(message="hi", model=MODEL), metadata=bearer(LIMITED_KEY)
            )
    finally:
        running.cancel()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = _status(err.value)
    details = _unpacked(status)
    assert set(details) == {ErrorInfo, RetryInfo}
    info = _error_info(status, "QUOTA_EXCEEDED")
    assert info.metadata["request_id"] == trailer(err.value, "x-request-id")
    retry = details[RetryInfo]
    assert isinstance(retry, RetryInfo)
    delay = retry.retry_delay.ToTimedelta().total_seconds()
    assert delay == float(trailer(err.value, "retry-after") or "") == 1.0


async def test_an_overload_says_when_to_retry(make_stack: StackFactory, emulator: Emulator) -> None:
    stack = await make_stack(max_concurrent=1, max_queue=0)
    emulator.faults.token_delay = 0.05
    stream = stack.stub.ChatStream(
        pb.ChatStreamRequest(request=pb.ChatRequest(message="a b c d e f", model=MODEL))
    )
    await stream.read()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.stub.Chat(pb.ChatRequest(message="hi", model=MODEL))
    finally:
        stream.cancel()
    status = _status(err.value)
    details = _unpacked(status)
    assert set(details) == {ErrorInfo, RetryInfo}
    _error_info(status, "OVERLOADED")
    retry = details[RetryInfo]
    assert isinstance(retry, RetryInfo)
    delay = retry.retry_delay.ToTimedelta().total_seconds()
    assert delay == pytest.approx(float(trailer(err.value, "retry-after") or ""), abs=1e-6)
    assert delay > 0


async def test_errors_without_a_field_or_a_delay_carry_error_info_alone(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(api_keys=("the-key",))
    # A name that is not ASCII: the Status's message is still the call's, byte for byte.
    cases = [
        (
            stack.stub.Chat(
                pb.ChatRequest(message="hi", model="призрак"), metadata=bearer("the-key")
            ),
            "MODEL_NOT_FOUND",
        ),
        (stack.stub.Chat(pb.ChatRequest(message="hi", model=MODEL)), "UNAUTHENTICATED"),
    ]
    for call, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        status = _status(err.value)
        assert set(_unpacked(status)) == {ErrorInfo}
        info = _error_info(status, reason)
        assert info.metadata["request_id"] == trailer(err.value, "x-request-id")


async def test_grpcurl_shows_the_details(stack: Stack) -> None:
    body = {"message": "hi", "model": MODEL, "max_tokens": TOO_MANY}
    done = await asyncio.to_thread(
        subprocess.run,
        [
            grpcurl(),
            "-plaintext",
            "-format-error",
            "-d",
            json.dumps(body),
            stack.target,
            "llm.v1.LlmService/Chat",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    shown = json.loads(done.stderr)
    assert shown["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    by_type = {d["@type"].rsplit("/", 1)[1]: d for d in shown["details"]}
    assert set(by_type) == {"google.rpc.ErrorInfo", "google.rpc.BadRequest"}
    assert by_type["google.rpc.ErrorInfo"]["reason"] == "INVALID_ARGUMENT"
    assert by_type["google.rpc.ErrorInfo"]["domain"] == DOMAIN
    violations = by_type["google.rpc.BadRequest"]["field_violations"]
    assert [v["field"] for v in violations] == ["max_tokens"]


# --- the in-process stub and the REST modes ------------------------------------------


def _comparable(err: grpc.aio.AioRpcError) -> tuple[Any, ...]:
    """What a failed call says, but for the request id (new on every call)."""
    status = _status(err)
    for detail in status.details:
        info = ErrorInfo()
        if detail.Unpack(info):
            del info.metadata["request_id"]
            detail.Pack(info)
    pairs: Any = err.trailing_metadata() or ()
    names = sorted(str(k) for k, _ in pairs if k != "x-request-id")
    return err.code(), err.details(), json_format.MessageToDict(status), names


async def test_the_in_process_stub_carries_the_same_trailers(stack: Stack) -> None:
    requests = [
        pb.ChatRequest(message="hi", model=MODEL, max_tokens=TOO_MANY),
        pb.ChatRequest(message="hi", model=MODEL, think="maybe"),
        pb.ChatRequest(
            model=MODEL, messages=[pb.ChatMessage(role="user", content="hi", images=[IMAGE])]
        ),
    ]
    for request in requests:
        with pytest.raises(grpc.aio.AioRpcError) as remote:
            await stack.stub.Chat(request, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as local:
            await stack.server.local.Chat(request, timeout=10)
        assert _comparable(local.value) == _comparable(remote.value)


def _image_chat(stream: bool) -> dict[str, Any]:
    """An OpenAI chat whose second message has an image, for a model without vision:
    the server's message starts with "model 'llama3.2' cannot take images", the field
    it names is that message's images."""
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    return {
        "model": MODEL,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is it?"}, picture]},
        ],
    }


async def test_openai_param_is_the_field_in_both_rest_modes(
    stack: Stack,
    start_shim: Callable[..., str],
    start_local_shim: LocalShimStarter,
    emulator: Emulator,
) -> None:
    """The same ``param`` whether the shim calls the servicer in process or over a
    channel, taken from the field the server names, never from its message: here the
    message starts with "model", the field is ``messages[1].images``."""
    urls = [
        await start_local_shim(stack.server),
        start_shim(replace(stack.settings, grpc_target=stack.target)),
    ]
    cases: list[tuple[dict[str, Any], str]] = [
        (_image_chat(False), "messages[1]"),
        (_image_chat(True), "messages[1]"),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1},
            "max_tokens",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "hi"}],
                "max_completion_tokens": TOO_MANY,
            },
            "max_completion_tokens",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "top_p": 0},
            "top_p",
        ),
    ]
    for url in urls:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for body, param in cases:
                r = await client.post("/v1/chat/completions", json=body)
                assert r.status_code == 400, r.text
                error = r.json()["error"]
                assert (error["code"], error["param"]) == ("invalid_argument", param), body
            r = await client.post("/v1/embeddings", json={"model": "bge-m3", "input": ["a", ""]})
            assert r.status_code == 400
            assert r.json()["error"]["param"] == "input"
    assert emulator.requests_to("/api/chat") == []


@pytest.mark.parametrize(
    ("code", "field", "param"),
    [
        ("invalid_argument", "output_format", "response_format"),
        ("invalid_argument", "request.output_format", "response_format"),
        ("invalid_argument", "max_tokens", "max_completion_tokens"),
        ("invalid_argument", "messages[3].tool_calls[0].name", "messages[3]"),
        ("invalid_argument", "request.messages[0].images[1]", "messages[0]"),
        ("invalid_argument", "history[2].role", "messages"),
        ("invalid_argument", "tools[1].parameters", "tools[1]"),
        ("invalid_argument", "input[3]", "input"),
        ("invalid_argument", "options.presence_penalty", "presence_penalty"),
        ("invalid_argument", "options.num_ctx", None),
        ("invalid_argument", "think", "reasoning_effort"),
        ("invalid_argument", "keep_alive", None),
        ("invalid_argument", "", None),
        ("model_not_found", "", "model"),
        ("quota_exceeded", "", None),
    ],
)
def test_contract_fields_map_to_openai_params(code: str, field: str, param: str | None) -> None:
    assert openai_param(code, field, "max_completion_tokens") == param
