"""llama-server itself, with SmolLM2-135M: what an OpenAI-compatible upstream answers.

No service here: these talk to llama-server directly, so a llama.cpp upgrade that
changes what the service will rely on shows up as a failure in this file.
"""

from __future__ import annotations

import math
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from tests.realmodel import LlamaServer

pytestmark = pytest.mark.realmodel

# Without a system message the GGUF's template adds SmolLM2's default one, with which
# this small model answers the question in French nonsense (greedy, every time).
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 42}


def sse_events(response: httpx.Response) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded, up to ``[DONE]``."""
    events: list[Any] = []
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        if line == "data: [DONE]":
            events.append("[DONE]")
            break
        events.append(orjson.loads(line[len("data: ") :]))
    return events


def test_capital_of_france(llama_server: LlamaServer) -> None:
    body = {"messages": QUESTION, "max_tokens": 32, **GREEDY}
    response = httpx.post(f"{llama_server.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200
    answer = response.json()
    (choice,) = answer["choices"]
    assert "Paris" in choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert answer["timings"]["predicted_n"] == usage["completion_tokens"]


def test_stream_chunks_and_final_usage(llama_server: LlamaServer) -> None:
    body = {
        "messages": QUESTION,
        "max_tokens": 32,
        "stream": True,
        "stream_options": {"include_usage": True},
        **GREEDY,
    }
    with httpx.stream(
        "POST", f"{llama_server.url}/v1/chat/completions", json=body, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Paris" in text
    deltas = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(deltas) >= 3
    finished = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finished[-1] in ("stop", "length")
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_health_models_slots_metrics(llama_server: LlamaServer) -> None:
    url = llama_server.url
    health = httpx.get(f"{url}/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    # idle connections are closed after 5 s, and each after 100 requests
    assert health.headers["keep-alive"] == "timeout=5, max=100"
    (model,) = httpx.get(f"{url}/v1/models").json()["data"]
    assert model["id"] == llama_server.model_path  # the -m path unless --alias is given
    slots = httpx.get(f"{url}/slots").json()
    assert [(s["id"], s["is_processing"], s["n_ctx"]) for s in slots] == [
        (0, False, 2048),
        (1, False, 2048),
    ]
    metrics = httpx.get(f"{url}/metrics").text
    assert "llamacpp:requests_processing 0" in metrics
    assert "llamacpp:requests_deferred 0" in metrics


def test_model_name_is_ignored(llama_server: LlamaServer) -> None:
    body = {"model": "no-such-model", "messages": QUESTION, "max_tokens": 2}
    response = httpx.post(f"{llama_server.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200
    assert response.json()["model"] == llama_server.model_path


@pytest.mark.parametrize(
    ("body", "error_type", "message"),
    [
        (b'{"messages": [', "invalid_request_error", "parse error"),
        (b'{"max_tokens": 2}', "invalid_request_error", "'messages' is required"),
        (
            orjson.dumps({"messages": QUESTION, "max_tokens": -5}),
            "invalid_request_error",
            "max_tokens",
        ),
        (
            orjson.dumps({"messages": [{"role": "user", "content": "word " * 2100}]}),
            "exceed_context_size_error",
            "exceeds the available context size",
        ),
    ],
    ids=["malformed-json", "no-messages", "negative-max-tokens", "over-context"],
)
def test_errors_are_400_with_an_openai_error_body(
    llama_server: LlamaServer, body: bytes, error_type: str, message: str
) -> None:
    response = httpx.post(
        f"{llama_server.url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["type"] == error_type
    assert message in error["message"]
    if error_type == "exceed_context_size_error":
        assert error["n_ctx"] == 2048 and error["n_prompt_tokens"] > 2048


def test_context_full_mid_answer_is_finish_reason_length(llama_tools_server: LlamaServer) -> None:
    """A prompt that fits but leaves no room for max_tokens is accepted; the answer stops
    where the slot's context (512 tokens on this server) is full."""
    prompt = [{"role": "user", "content": "word " * 400}]
    body = {"messages": prompt, "max_tokens": 500, "ignore_eos": True}
    url = f"{llama_tools_server.url}/v1/chat/completions"
    response = httpx.post(url, json=body, timeout=120)
    assert response.status_code == 200
    answer = response.json()
    assert answer["choices"][0]["finish_reason"] == "length"
    usage = answer["usage"]
    assert 0 < usage["completion_tokens"] < 500
    assert usage["total_tokens"] <= 512


def busy_slots(server: LlamaServer) -> int:
    return sum(s["is_processing"] for s in httpx.get(f"{server.url}/slots").json())


LONG = {
    "messages": [{"role": "user", "content": "Write a long story."}],
    "max_tokens": 1900,
    "ignore_eos": True,
}


def test_closing_a_stream_frees_its_slot_at_once(llama_server: LlamaServer) -> None:
    url = f"{llama_server.url}/v1/chat/completions"
    with httpx.stream("POST", url, json={**LONG, "stream": True}, timeout=60) as response:
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)
        assert busy_slots(llama_server) == 1
    deadline = time.monotonic() + 2
    while busy_slots(llama_server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert busy_slots(llama_server) == 0


def test_abandoned_non_stream_request_runs_on_while_the_server_is_busy(
    llama_server: LlamaServer,
) -> None:
    """llama-server looks at a waiting non-streamed request's connection only after a
    whole second without any result for any task; polling /slots (or /metrics, or
    another request's tokens) keeps that from happening, so the generation goes on."""
    body = orjson.dumps(LONG)
    with socket.create_connection(("127.0.0.1", llama_server.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        time.sleep(1.0)
        assert busy_slots(llama_server) == 1
    for _ in range(30):  # 3 s of polling every 0.1 s
        time.sleep(0.1)
        assert busy_slots(llama_server) == 1
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(2.5)  # quiet gaps longer than a second
        if not busy_slots(llama_server):
            break
    assert busy_slots(llama_server) == 0


def test_requests_beyond_the_slots_wait_for_one(llama_server: LlamaServer) -> None:
    def ask(i: int) -> int:
        body = {"messages": [{"role": "user", "content": f"Count to {i}."}], "max_tokens": 48}
        url = f"{llama_server.url}/v1/chat/completions"
        return httpx.post(url, json={**body, "ignore_eos": True}, timeout=120).status_code

    deferred = []
    with ThreadPoolExecutor(5) as pool:
        asked = [pool.submit(ask, i) for i in range(5)]
        while not all(f.done() for f in asked):  # sampled for as long as any is answering
            time.sleep(0.1)
            metrics = httpx.get(f"{llama_server.url}/metrics").text
            deferred.append(int(re.findall(r"^llamacpp:requests_deferred (\d+)", metrics, re.M)[0]))
        assert [f.result() for f in asked] == [200] * 5
    assert max(deferred) >= 1


def test_embeddings_next_to_chat(llama_server: LlamaServer) -> None:
    url = f"{llama_server.url}/v1/embeddings"
    response = httpx.post(url, json={"input": ["The cat sat.", "Stocks fell."]}, timeout=60)
    assert response.status_code == 200
    answer = response.json()
    assert [d["index"] for d in answer["data"]] == [0, 1]
    vector = answer["data"][0]["embedding"]
    assert len(vector) == 576
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-3)
    assert answer["usage"]["prompt_tokens"] > 0
    too_long = httpx.post(url, json={"input": "word " * 600}, timeout=60)
    assert too_long.status_code == 500
    assert "too large to process" in too_long.json()["error"]["message"]


def test_json_schema_response_format(llama_server: LlamaServer) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    body = {
        "messages": QUESTION,
        "max_tokens": 64,
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
        **GREEDY,
    }
    response = httpx.post(f"{llama_server.url}/v1/chat/completions", json=body, timeout=60)
    place = orjson.loads(response.json()["choices"][0]["message"]["content"])
    assert set(place) == {"city", "country"}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# SmolLM2 calls the tool once it has seen one call in the conversation.
TOOL_TURNS = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call>",
    },
    {"role": "user", "content": "And in Rome?"},
]


def test_tools_are_ignored_by_smollm2s_own_template(llama_server: LlamaServer) -> None:
    caps = httpx.get(f"{llama_server.url}/props").json()["chat_template_caps"]
    assert caps["supports_tools"] is False
    body = {"messages": TOOL_TURNS, "tools": [WEATHER_TOOL], "max_tokens": 24, **GREEDY}
    response = httpx.post(f"{llama_server.url}/v1/chat/completions", json=body, timeout=60)
    (choice,) = response.json()["choices"]
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] != "tool_calls"


def test_tool_call_with_a_tools_template(llama_tools_server: LlamaServer) -> None:
    body = {"messages": TOOL_TURNS, "tools": [WEATHER_TOOL], "max_tokens": 64, **GREEDY}
    url = f"{llama_tools_server.url}/v1/chat/completions"
    response = httpx.post(url, json=body, timeout=60)
    (choice,) = response.json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Rome"}

    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=60) as streamed:
        chunks = [c for c in sse_events(streamed) if c != "[DONE]"]
    pieces = [
        piece
        for c in chunks
        for piece in c["choices"][0]["delta"].get("tool_calls", [])
        if c["choices"]
    ]
    assert pieces[0]["function"]["name"] == "get_weather" and pieces[0]["id"]
    arguments = "".join(p["function"].get("arguments", "") for p in pieces)
    assert orjson.loads(arguments) == {"city": "Rome"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
