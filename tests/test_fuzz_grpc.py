"""Property-based run of the gRPC face: hypothesis builds Chat, ChatStream and Embed
requests (empty, blank, over-long and non-ASCII text, known and unknown models, random
history, out-of-range and non-finite numbers, stop lists, formats and think values) and
sends them to the real server (on its own loop, in a thread) in front of the emulator.

Every call has a deadline, so a hang fails as DEADLINE_EXCEEDED. The outcome must be OK
or a refusal of the request (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED), never
INTERNAL, UNKNOWN or UNAVAILABLE; it must be INVALID_ARGUMENT whenever a value breaks a
rule the proto states, and OK when every value is valid and the model can chat (or
embed). Successful answers must add up; Chat and ChatStream must agree.

Bounded: a fixed number of examples, derandomized (the same requests on every run),
an emulator without delays, small server limits so that the inputs reach them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from ollama_emulator import Emulator
from server.errors import ERROR_CODE_KEY
from tests.conftest import make_settings
from tests.threaded_stack import ThreadedGrpcServer

EXAMPLES_PER_FIELD = 12  # x 12 (every field, all valid, all wild): 144 requests
CALL_DEADLINE = 10.0  # seconds; the emulator answers in milliseconds
MAX_TOKENS = 16
MAX_CHARS = 64
MAX_HISTORY = 6
MAX_EMBED_INPUTS = 6
GRPC_MAX_RECEIVE = 8 * 1024 * 1024  # server.app's grpc.max_receive_message_length

C = grpc.StatusCode
ALLOWED = {C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND, C.RESOURCE_EXHAUSTED}
# The llm-error-code each refusal may carry.
ERROR_CODES = {
    C.INVALID_ARGUMENT: {"invalid_argument", "ollama_bad_request"},
    C.NOT_FOUND: {"model_not_found"},
    C.RESOURCE_EXHAUSTED: {"overloaded", "ollama_busy"},
}

ROLES = ("system", "user", "assistant", "tool")
THINK = ("true", "false", "low", "medium", "high")

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the stack ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub() -> Iterator[pb_grpc.LlmServiceStub]:
    """A blocking stub on the real server (its own loop and thread) before the emulator."""
    with Emulator() as emu:
        config = make_settings(
            emu.url,
            max_tokens=MAX_TOKENS,
            max_message_chars=MAX_CHARS,
            max_history=MAX_HISTORY,
            max_embed_inputs=MAX_EMBED_INPUTS,
        )
        with ThreadedGrpcServer(config) as server:
            # No proxy from the environment (grpc reads http_proxy and friends otherwise).
            options = [("grpc.enable_http_proxy", 0)]
            with grpc.insecure_channel(server.target, options=options) as channel:
                yield pb_grpc.LlmServiceStub(channel)


# --- what the model names are -----------------------------------------------------------


@dataclass(frozen=True)
class Model:
    name: str
    # "thinking" (chats, reasons), "chat" (chats, cannot think), "embedding",
    # "unknown" (Ollama does not have it), "any" (random text: no expectation)
    kind: str


KNOWN_MODELS = [
    Model("", "thinking"),  # the default model, gpt-oss:20b
    Model("gpt-oss:20b", "thinking"),
    Model(" GPT-OSS:20b ", "thinking"),
    Model("llama3.2", "chat"),
    Model("llama3.2:latest", "chat"),
    Model("registry.ollama.ai/library/llama3.2", "chat"),
    Model("bge-m3", "embedding"),
    Model("bge-m3:latest", "embedding"),
    Model("ghost", "unknown"),
    Model("llama3.2:70b", "unknown"),
    Model("gpt-oss", "unknown"),  # gpt-oss:latest is not pulled
]
EMBED_DEFAULT = Model("", "embedding")  # bge-m3 when an embed request names none


def models() -> st.SearchStrategy[Model]:
    chat = st.sampled_from([m for m in KNOWN_MODELS if m.kind in ("thinking", "chat")])
    junk = st.text(max_size=20).map(lambda name: Model(name, "any"))
    return st.one_of(chat, chat, st.sampled_from(KNOWN_MODELS), junk)


# --- text -------------------------------------------------------------------------------

# Protobuf strings are UTF-8: no lone surrogates.
CHARS = st.characters(exclude_categories=["Cs"])


def texts(max_size: int = MAX_CHARS) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(CHARS, max_size=max_size),
        st.sampled_from(
            ["", " ", "\t\n ", "\x00", "héllo wörld", "你好 世界", "🙂 🙃", "a\u200bb"]
        ),
        st.text(CHARS, min_size=1, max_size=8).map(lambda word: (word + " ") * 10),
    )


def numbers() -> st.SearchStrategy[float]:
    edges = [0.0, -0.0, 1.0, 2.0, 2.0000001, 1.0000001, 5e-324, -1.0, 1e308]
    return st.one_of(st.sampled_from(edges), st.floats(allow_nan=True, allow_infinity=True))


def _turns(
    role: st.SearchStrategy[str],
    content: st.SearchStrategy[str],
    thinking: st.SearchStrategy[str],
    max_size: int,
) -> st.SearchStrategy[list[pb.ChatMessage]]:
    turn = st.builds(pb.ChatMessage, role=role, content=content, thinking=thinking)
    return st.lists(turn, max_size=max_size)


VALID_FORMATS = [
    "",
    "json",
    " json ",
    "{}",
    '{"type": "object", "properties": {"a": {"type": "string"}}}',
]
WILD_FORMATS = [
    "JSON",
    "[]",
    '["json"]',
    "{",
    "null",
    "42",
    '"json"',
    # not JSON (RFC 8259 has no NaN or Infinity), though Python's json module reads them
    '{"type": NaN}',
    '{"maximum": Infinity}',
]
json_objects = st.dictionaries(
    st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3
).map(json.dumps)
# json.dumps writes non-finite floats as NaN / Infinity / -Infinity
nasty_floats = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.floats())
float_objects = st.dictionaries(st.text(max_size=5), nasty_floats, min_size=1, max_size=2).map(
    json.dumps
)

# Each field of a ChatRequest: (valid values, any values). None leaves the field unset.
CHAT_FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "message": (
        st.one_of(
            st.text(CHARS, min_size=1, max_size=MAX_CHARS).filter(str.strip),
            st.sampled_from(["hi", "héllo wörld", "你好 世界", "🙂 🙃", "a\x00b", "x" * MAX_CHARS]),
        ),
        st.one_of(
            texts(),
            st.integers(MAX_CHARS + 1, MAX_CHARS * 3).map(lambda n: "é" * n),
            st.just("x" * 100_000),
        ),
    ),
    "history": (
        _turns(
            st.sampled_from([*ROLES, " User ", "ASSISTANT"]),
            st.text(CHARS, max_size=20),
            st.text(CHARS, max_size=10),
            MAX_HISTORY,
        ),
        _turns(
            st.one_of(
                st.sampled_from([*ROLES, "", "robot", "function"]), st.text(CHARS, max_size=8)
            ),
            texts(),
            texts(MAX_CHARS * 2),
            MAX_HISTORY + 2,
        ),
    ),
    "system": (st.none() | st.text(CHARS, max_size=MAX_CHARS), st.none() | texts(MAX_CHARS * 5)),
    "max_tokens": (
        st.none() | st.integers(1, MAX_TOKENS),
        st.sampled_from([-1, 0, MAX_TOKENS + 1]) | st.integers(-(2**31), 2**31 - 1),
    ),
    "temperature": (st.none() | st.floats(0.0, 2.0), numbers()),
    "top_p": (st.none() | st.floats(0.0, 1.0, exclude_min=True), numbers()),
    "seed": (st.none() | st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1)),
    "stop": (
        st.lists(st.text(CHARS, min_size=1, max_size=6), max_size=3),
        st.lists(texts(6), max_size=4),
    ),
    "format": (
        st.one_of(st.sampled_from(VALID_FORMATS), json_objects),
        st.one_of(st.sampled_from(WILD_FORMATS), float_objects, st.text(CHARS, max_size=10)),
    ),
    "think": (
        st.sampled_from(["", *THINK, "TRUE", " High "]),
        st.one_of(st.sampled_from(["maybe", "0", "none", "yes"]), st.text(CHARS, max_size=6)),
    ),
}


@dataclass(frozen=True)
class ChatCase:
    request: pb.ChatRequest
    model: Model
    wild: str | None = None  # the field drawn from any values ("every": all of them)


@st.composite
def chat_cases(draw: st.DrawFn, wild: str | None) -> ChatCase:
    """Field ``wild`` takes any value and the others valid ones, so that each rule is
    reached (``None``: every field valid, "every": every field any value)."""
    model = draw(models())
    request = pb.ChatRequest(model=model.name)
    for name, (valid, anything) in CHAT_FIELDS.items():
        value = draw(anything if wild in (name, "every") else valid)
        if value is None:
            continue
        if name in ("history", "stop"):
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    return ChatCase(request, model, wild)


# --- the rules the proto states ------------------------------------------------------------


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _format_is_valid(raw: str) -> bool:
    text = raw.strip()
    if text in ("", "json"):
        return True
    try:
        return isinstance(json.loads(text, parse_constant=_not_json), dict)
    except ValueError:
        return False


def chat_rule_broken(r: pb.ChatRequest) -> str | None:
    """Why the request is invalid (INVALID_ARGUMENT), or None when every value is valid."""
    if not r.message.strip():
        return "message is empty"
    if len(r.message) > MAX_CHARS:
        return "message is over the limit"
    if len(r.history) > MAX_HISTORY:
        return "too many history turns"
    held = len(r.system) + sum(len(t.content) + len(t.thinking) for t in r.history)
    if held > 4 * MAX_CHARS:
        return "system prompt and history are over the limit"
    if any(t.role.strip().lower() not in ROLES for t in r.history):
        return "unknown role"
    if r.HasField("max_tokens") and not 0 < r.max_tokens <= MAX_TOKENS:
        return "max_tokens out of range"
    if r.HasField("temperature") and not 0.0 <= r.temperature <= 2.0:
        return "temperature out of range (or NaN)"
    if r.HasField("top_p") and not 0.0 < r.top_p <= 1.0:
        return "top_p out of range (or NaN)"
    if any(not s for s in r.stop):
        return "empty stop string"
    if not _format_is_valid(r.format):
        return "format is neither json nor a JSON object"
    if r.think.strip() and r.think.strip().lower() not in THINK:
        return "unknown think value"
    return None


def expected_chat(case: ChatCase) -> set[grpc.StatusCode]:
    if chat_rule_broken(case.request) is not None:
        return {C.INVALID_ARGUMENT}
    kind = case.model.kind
    if kind == "thinking":
        return {C.OK}
    if kind == "chat":  # llama3.2 cannot think: Ollama refuses think values but false
        thinks = case.request.think.strip().lower() not in ("", "false")
        return {C.INVALID_ARGUMENT} if thinks else {C.OK}
    if kind == "embedding":  # Ollama: "does not support chat"
        return {C.INVALID_ARGUMENT}
    if kind == "unknown":
        return {C.NOT_FOUND}
    return ALLOWED


def expected_embed(request: pb.EmbedRequest, model: Model) -> set[grpc.StatusCode]:
    texts = list(request.input)
    if (
        not texts
        or len(texts) > MAX_EMBED_INPUTS
        or any(not t.strip() or len(t) > MAX_CHARS for t in texts)
    ):
        return {C.INVALID_ARGUMENT}
    if model.kind == "embedding" or not model.name.strip():  # "": the embedding model
        return {C.OK}
    if model.kind in ("thinking", "chat"):  # Ollama: "does not support embeddings"
        return {C.INVALID_ARGUMENT}
    if model.kind == "unknown":
        return {C.NOT_FOUND}
    return ALLOWED


# --- calling --------------------------------------------------------------------------------


def _refusal(err: grpc.RpcError, *, by_service: bool = True) -> grpc.StatusCode:
    """The code of a failed call, after checking that the service named a stable error
    code (``by_service``; gRPC itself refuses over-sized messages, without one)."""
    assert isinstance(err, grpc.Call)
    code = err.code()
    assert code in ALLOWED, f"{code.name}: {err.details()}"
    if by_service and code in ERROR_CODES:
        trailers = dict(err.trailing_metadata() or ())
        assert trailers.get(ERROR_CODE_KEY) in ERROR_CODES[code], (code, trailers)
        assert err.details()
    return code


def call_chat(stub: pb_grpc.LlmServiceStub, r: pb.ChatRequest) -> pb.ChatResponse | grpc.StatusCode:
    try:
        reply: pb.ChatResponse = stub.Chat(r, timeout=CALL_DEADLINE)
    except grpc.RpcError as err:
        return _refusal(err)
    return reply


def call_stream(
    stub: pb_grpc.LlmServiceStub, r: pb.ChatStreamRequest
) -> list[pb.ChatStreamResponse] | grpc.StatusCode:
    events: list[pb.ChatStreamResponse] = []
    try:
        for event in stub.ChatStream(r, timeout=CALL_DEADLINE):
            events.append(event)
    except grpc.RpcError as err:
        assert not events, "a stream failed after its first event"
        return _refusal(err)
    return events


def _check_reply(reply: pb.ChatResponse, r: pb.ChatRequest) -> None:
    assert reply.total_tokens == reply.prompt_tokens + reply.response_tokens
    assert reply.prompt_tokens > 0
    assert reply.done_reason in ("stop", "length")
    assert reply.model
    if reply.response or reply.thinking:
        assert reply.response_tokens > 0
    else:  # nothing generated: only a stop string found at the very start can do that
        assert list(r.stop), reply
    assert math.isfinite(reply.generation_time_ms) and reply.generation_time_ms >= 0


def _check_stream(events: list[pb.ChatStreamResponse], reply: pb.ChatResponse) -> None:
    assert events, "an OK stream without events"
    deltas, final = events[:-1], events[-1]
    assert final.done, "the stream did not end with its done event"
    assert not any(e.done for e in deltas), "more than one done event"
    assert all(e.content or e.thinking for e in deltas), "an empty delta"
    assert final.total_tokens == final.prompt_tokens + final.response_tokens
    assert final.response_tokens == len(deltas)  # the emulator sends one token a chunk
    # Same request, same deterministic model: the stream joins to the Chat answer.
    assert "".join(e.content for e in deltas) == reply.response
    assert "".join(e.thinking for e in deltas) == reply.thinking
    assert (final.prompt_tokens, final.response_tokens) == (
        reply.prompt_tokens,
        reply.response_tokens,
    )
    assert final.done_reason == reply.done_reason


# --- the properties -----------------------------------------------------------------------


def check_chat(stub: pb_grpc.LlmServiceStub, case: ChatCase) -> grpc.StatusCode:
    """Chat and ChatStream give the expected outcome, the same one, and answers that add
    up; returns the outcome."""
    expected = expected_chat(case)
    reply = call_chat(stub, case.request)
    events = call_stream(stub, pb.ChatStreamRequest(request=case.request))
    chat_code = C.OK if isinstance(reply, pb.ChatResponse) else reply
    stream_code = C.OK if isinstance(events, list) else events
    assert chat_code in expected, (chat_code, expected, chat_rule_broken(case.request))
    assert stream_code == chat_code, (stream_code, chat_code)
    if isinstance(reply, pb.ChatResponse):
        _check_reply(reply, case.request)
        assert isinstance(events, list)
        _check_stream(events, reply)
    return chat_code


@pytest.mark.parametrize("wild", [None, "every", *CHAT_FIELDS])
@settings(FUZZ, max_examples=EXAMPLES_PER_FIELD)
@given(data=st.data())
def test_chat_and_chat_stream(
    stub: pb_grpc.LlmServiceStub, wild: str | None, data: st.DataObject
) -> None:
    outcome = check_chat(stub, data.draw(chat_cases(wild), label="case"))
    event(outcome.name)


LLAMA, GPT_OSS = Model("llama3.2", "chat"), Model("gpt-oss:20b", "thinking")
TURN = pb.ChatMessage(role="user", content="earlier")


def _pinned(model: Model = LLAMA, **fields: Any) -> ChatCase:
    return ChatCase(pb.ChatRequest(model=model.name, **{"message": "hi", **fields}), model)


# Edges, and what the fuzz found, checked on every run whatever the strategies become.
PINNED = {
    "format NaN": _pinned(format='{"type": NaN}'),
    "format Infinity": _pinned(format='{"maximum": -Infinity}'),
    "temperature NaN": _pinned(temperature=math.nan),
    "top_p inf": _pinned(top_p=math.inf),
    "top_p 0": _pinned(top_p=0.0),
    "temperature 2": _pinned(temperature=2.0),
    "max_tokens int32 max": _pinned(max_tokens=2**31 - 1),
    "max_tokens at the limit": _pinned(GPT_OSS, max_tokens=MAX_TOKENS),
    "seed int64 min": _pinned(seed=-(2**63)),
    "message at the limit": _pinned(message="é" * MAX_CHARS),
    "message over the limit": _pinned(message="é" * (MAX_CHARS + 1)),
    "history at the limit": _pinned(history=[TURN] * MAX_HISTORY),
    "history over the limit": _pinned(history=[TURN] * (MAX_HISTORY + 1)),
    "think with spaces": _pinned(GPT_OSS, think=" High "),
    "think on a model that cannot": _pinned(think="low"),
    "stop at the start of the answer": _pinned(stop=["Echo"]),
    "empty stop string": _pinned(stop=["x", ""]),
    "chat with an embedding model": _pinned(Model("bge-m3", "embedding")),
}


@pytest.mark.parametrize("case", PINNED.values(), ids=PINNED.keys())
def test_pinned_chat_cases(stub: pb_grpc.LlmServiceStub, case: ChatCase) -> None:
    check_chat(stub, case)


def test_chat_stream_without_a_request_is_invalid(stub: pb_grpc.LlmServiceStub) -> None:
    assert call_stream(stub, pb.ChatStreamRequest()) == C.INVALID_ARGUMENT


def test_message_over_the_grpc_size_limit_is_refused(stub: pb_grpc.LlmServiceStub) -> None:
    big = pb.ChatRequest(message="x" * (GRPC_MAX_RECEIVE + 1), model="llama3.2")
    with pytest.raises(grpc.RpcError) as err:
        stub.Chat(big, timeout=CALL_DEADLINE)
    assert _refusal(err.value, by_service=False) == C.RESOURCE_EXHAUSTED


@st.composite
def embed_cases(draw: st.DrawFn) -> tuple[pb.EmbedRequest, Model]:
    embedders = [EMBED_DEFAULT, *(m for m in KNOWN_MODELS if m.kind == "embedding")]
    model = draw(st.one_of(st.sampled_from(embedders), models()))
    valid = st.lists(
        st.text(CHARS, min_size=1, max_size=MAX_CHARS).filter(str.strip),
        min_size=1,
        max_size=MAX_EMBED_INPUTS,
    )
    inputs = draw(
        st.one_of(
            valid,
            st.integers(1, MAX_EMBED_INPUTS).map(lambda n: [f"text {i}" for i in range(n)]),
            st.lists(texts(), max_size=MAX_EMBED_INPUTS + 2),
            st.lists(st.just("x" * (MAX_CHARS + 1)) | texts(), min_size=1, max_size=3),
        )
    )
    return pb.EmbedRequest(input=inputs, model=model.name), model


@settings(FUZZ, max_examples=50)
@example(case=(pb.EmbedRequest(input=["a"] * (MAX_EMBED_INPUTS + 1)), EMBED_DEFAULT))
@example(case=(pb.EmbedRequest(input=["x" * (MAX_CHARS + 1)]), EMBED_DEFAULT))
@given(case=embed_cases())
def test_embed(stub: pb_grpc.LlmServiceStub, case: tuple[pb.EmbedRequest, Model]) -> None:
    request, model = case
    expected = expected_embed(request, model)
    try:
        reply: pb.EmbedResponse = stub.Embed(request, timeout=CALL_DEADLINE)
    except grpc.RpcError as err:
        code = _refusal(err)
        event(code.name)
        assert code in expected, (code, expected)
        return
    event("OK")
    assert C.OK in expected, expected
    assert len(reply.embeddings) == len(request.input)
    assert reply.dimensions > 0
    for vector in reply.embeddings:
        assert len(vector.values) == reply.dimensions
        assert all(math.isfinite(v) for v in vector.values)
    assert reply.model


def test_the_server_still_serves_and_its_counters_add_up(
    stub: pb_grpc.LlmServiceStub,
) -> None:
    health: pb.HealthResponse = stub.Health(pb.HealthRequest(), timeout=CALL_DEADLINE)
    assert health.status == "healthy"
    stats: pb.StatsResponse = stub.Stats(pb.StatsRequest(), timeout=CALL_DEADLINE)
    t = stats.totals
    assert t.total_requests == t.successful_requests + t.failed_requests + t.cancelled_requests
    assert sum(t.failures_by_kind.values()) == t.failed_requests
    assert stats.running_generations == 0 and stats.queued_generations == 0
