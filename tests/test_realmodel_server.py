"""llama-server itself, with SmolLM2-135M: what an OpenAI-compatible upstream answers.

No service here: these talk to llama-server directly, so a llama.cpp upgrade that
changes what the service will rely on shows up as a failure in this file.
"""

from __future__ import annotations

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
