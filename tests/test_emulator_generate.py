"""The emulator's /api/generate answers like Ollama's: checked with the official client.

Raw httpx checks the exact wire shapes and error bodies. Expectations come from
``ollama_emulator.completion``/``content`` and from what the emulator recorded,
never from magic numbers; no test sleeps to synchronise.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import ollama
import pytest
from pydantic import BaseModel

from ollama_emulator import Emulator, Faults
from ollama_emulator.completion import Completion
from ollama_emulator.content import count_words, thinking_text, tokenize
from ollama_emulator.logprobs import token_logprob
from ollama_emulator.wire import BUSY_MESSAGE, NO_VISION_MESSAGE

CHAT = "llama3.2"
THINKER = "gpt-oss:20b"
CODER = "qwen2.5-coder:1.5b"
SEER = "gemma3:4b"
EMBEDDER = "bge-m3"
PROMPT = "why is the sky blue?"
METRICS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[ollama.AsyncClient]:
    async with ollama.AsyncClient(host=emulator.url) as c:
        yield c


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emulator.url, timeout=10.0) as c:
        yield c


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


# -- answers ----------------------------------------------------------------------------


async def test_streams_by_default_in_ollama_shapes(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/generate", json={"model": CHAT, "prompt": PROMPT})
    assert response.headers["content-type"] == "application/x-ndjson"
    *chunks, done = ndjson(response.text)
    expected = Completion(PROMPT).generate()
    assert [c["response"] for c in chunks] == list(expected.content_tokens)
    assert all(set(c) == {"model", "created_at", "response", "done"} for c in chunks)
    assert all(c["model"] == CHAT and c["done"] is False for c in chunks)
    assert set(done) == {"model", "created_at", "response", "done", "done_reason", "context"} | {
        "prompt_eval_count",
        "eval_count",
        *METRICS,
    }
    assert (done["response"], done["done"], done["done_reason"]) == ("", True, "stop")
    assert done["eval_count"] == len(chunks)
    assert done["prompt_eval_count"] == count_words(PROMPT)
    assert len(done["context"]) == done["prompt_eval_count"] + done["eval_count"]

    single = await http.post(
        "/api/generate", json={"model": CHAT, "prompt": PROMPT, "stream": False}
    )
    assert single.headers["content-type"] == "application/json; charset=utf-8"
    whole = single.json()
    assert whole["response"] == "Echo: " + PROMPT == expected.content
    assert whole["context"] == done["context"] and "thinking" not in whole


async def test_stream_joins_to_the_single_answer(client: ollama.AsyncClient) -> None:
    single = await client.generate(model=CHAT, prompt=PROMPT)
    parts = [p async for p in await client.generate(model=CHAT, prompt=PROMPT, stream=True)]
    assert "".join(p.response or "" for p in parts) == single.response
    assert parts[-1].done and parts[-1].eval_count == single.eval_count
    assert all(isinstance(getattr(single, f), int) and getattr(single, f) > 0 for f in METRICS)


def test_the_sync_client_generates(emulator: Emulator) -> None:
    with ollama.Client(host=emulator.url) as client:
        answer = client.generate(model=CHAT, prompt=PROMPT)
        streamed = "".join(
            p.response or "" for p in client.generate(model=CHAT, prompt=PROMPT, stream=True)
        )
    assert answer.response == streamed == Completion(PROMPT).answer()


async def test_system_suffix_raw_and_template_show_in_the_answer(
    client: ollama.AsyncClient,
) -> None:
    system = "You are terse."
    told = await client.generate(model=CHAT, prompt=PROMPT, system=system)
    assert told.response == f"Echo: {PROMPT} (system: {system})"
    assert told.prompt_eval_count == count_words(system) + count_words(PROMPT)

    code, tail = "def add(a, b):", "    return c"
    filled = await client.generate(model=CODER, prompt=code, suffix=tail)
    assert filled.response == f"Echo: {code} (suffix: {tail})"

    raw = await client.generate(model=CHAT, prompt=PROMPT, raw=True)
    assert raw.response == "Raw: " + PROMPT and raw.context is None

    template = "{{- if .System }}<<{{ .System }}>> {{ end }}[INST] {{ .Prompt }} [/INST]"
    shaped = await client.generate(model=CHAT, prompt=PROMPT, system=system, template=template)
    assert shaped.response == f"Echo: <<{system}>> [INST] {PROMPT} [/INST]"
    for answer, request in [
        (told, Completion(PROMPT, system=system)),
        (filled, Completion(code, suffix=tail)),
        (raw, Completion(PROMPT, raw=True)),
        (shaped, Completion(PROMPT, system=system, template=template)),
    ]:
        assert answer.response == request.answer()


async def test_context_carries_a_conversation(client: ollama.AsyncClient) -> None:
    first = await client.generate(model=CHAT, prompt=PROMPT)
    context = list(first.context or [])
    assert len(context) == (first.prompt_eval_count or 0) + (first.eval_count or 0)
    follow = "and at night?"
    second = await client.generate(model=CHAT, prompt=follow, context=context)
    assert second.response == f"Echo: {follow} (context: {len(context)} tokens)"
    assert second.prompt_eval_count == len(context) + count_words(follow)
    assert list(second.context or [])[: len(context)] == context


async def test_a_thinking_model_thinks_first(client: ollama.AsyncClient) -> None:
    single = await client.generate(model=THINKER, prompt=PROMPT)
    assert single.thinking == thinking_text(PROMPT) and single.response == "Echo: " + PROMPT
    parts = [p async for p in await client.generate(model=THINKER, prompt=PROMPT, stream=True)]
    thinking = [p for p in parts if p.thinking]
    answer = [p for p in parts if p.response]
    assert parts.index(thinking[-1]) < parts.index(answer[0])
    assert all(p.response == "" for p in thinking)
    assert [p.thinking for p in thinking] == tokenize(thinking_text(PROMPT))
    with pytest.raises(ollama.ResponseError) as err:
        await client.generate(model=CHAT, prompt=PROMPT, think=True)
    assert (err.value.status_code, err.value.error) == (400, '"llama3.2" does not support thinking')


async def test_format_answers_json(client: ollama.AsyncClient) -> None:
    class Sky(BaseModel):
        question: str
        words: int

    echo = await client.generate(model=CHAT, prompt=PROMPT, format="json")
    assert json.loads(echo.response or "") == {"echo": PROMPT}
    shaped = await client.generate(model=CHAT, prompt=PROMPT, format=Sky.model_json_schema())
    assert Sky.model_validate_json(shaped.response or "") == Sky(
        question=PROMPT, words=count_words(PROMPT)
    )


async def test_images_show_in_the_answer(client: ollama.AsyncClient) -> None:
    images = [b"one picture", b"another picture"]
    seen = await client.generate(model=SEER, prompt="describe", images=images)
    assert seen.response == Completion("describe", images=tuple(images)).answer()
    assert "(2 images: " in (seen.response or "")
    with pytest.raises(ollama.ResponseError) as err:
        await client.generate(model=CHAT, prompt="describe", images=images)
    assert (err.value.status_code, err.value.error) == (500, NO_VISION_MESSAGE)


async def test_logprobs(client: ollama.AsyncClient) -> None:
    answer = await client.generate(model=CHAT, prompt=PROMPT, logprobs=True, top_logprobs=2)
    assert [p.token for p in answer.logprobs or []] == tokenize(answer.response or "")
    assert all(p.logprob == token_logprob(p.token) for p in answer.logprobs or [])
    assert all(len(p.top_logprobs or []) == 2 for p in answer.logprobs or [])


async def test_an_empty_prompt_loads_or_unloads(client: ollama.AsyncClient) -> None:
    loaded = await client.generate(model=CHAT)
    assert (loaded.done, loaded.done_reason, loaded.response) == (True, "load", "")
    assert [m.model for m in (await client.ps()).models] == ["llama3.2:latest"]
    unloaded = await client.generate(model=CHAT, keep_alive=0)
    assert (unloaded.done, unloaded.done_reason) == (True, "unload")
    assert (await client.ps()).models == []


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"prompt": PROMPT}, 404, "model '' not found"),
        ({"model": "nope", "prompt": PROMPT}, 404, "model 'nope' not found"),
        ({"model": EMBEDDER, "prompt": PROMPT}, 400, '"bge-m3" does not support generate'),
        (
            {"model": CHAT, "prompt": "def f(", "suffix": "pass"},
            400,
            "registry.ollama.ai/library/llama3.2:latest does not support insert",
        ),
        (
            {"model": CHAT, "prompt": PROMPT, "raw": True, "system": "x"},
            400,
            "raw mode does not support template, system, or context",
        ),
        (
            {"model": CHAT, "prompt": PROMPT, "top_logprobs": -1},
            400,
            "top_logprobs must be between 0 and 20",
        ),
        (
            {"model": CHAT, "prompt": PROMPT, "options": {"top_k": "x"}},
            500,
            'option "top_k" must be of type integer',
        ),
        (
            {"model": SEER, "prompt": PROMPT, "images": ["abc"]},
            400,
            "illegal base64 data at input byte 0",
        ),
    ],
)
async def test_errors_like_ollama(
    http: httpx.AsyncClient, body: dict[str, Any], status: int, error: str
) -> None:
    response = await http.post("/api/generate", json=body)
    assert (response.status_code, response.json()) == (status, {"error": error})


async def test_a_malformed_body_is_refused(http: httpx.AsyncClient) -> None:
    empty = await http.post("/api/generate", content=b"")
    assert (empty.status_code, empty.json()) == (400, {"error": "missing request body"})
    wrong = await http.post("/api/generate", json={"model": CHAT, "prompt": 5})
    assert wrong.status_code == 400 and "GenerateRequest.prompt" in wrong.json()["error"]


# -- the same faults as chat --------------------------------------------------------------


async def test_faults_apply(emulator: Emulator, http: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "prompt": PROMPT}
    emulator.faults = Faults(busy=True, times=1)
    busy = await http.post("/api/generate", json=body)
    assert (busy.status_code, busy.json()) == (503, {"error": BUSY_MESSAGE})

    emulator.faults = Faults(error_after_chunks=2)
    lines = ndjson((await http.post("/api/generate", json=body)).text)
    expected = Completion(PROMPT).generate()
    assert [line["response"] for line in lines[:2]] == list(expected.content_tokens[:2])
    assert lines[2:] == [{"error": emulator.faults.error_message}]

    emulator.faults = Faults(cut_after_chunks=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/api/generate", json=body | {"stream": False})

    emulator.faults = Faults(answer_tokens=50)
    long = (await http.post("/api/generate", json=body | {"stream": False})).json()
    assert long["eval_count"] == 50 and long["response"].startswith("Echo: " + PROMPT)


async def test_the_stream_is_paced(emulator: Emulator) -> None:
    emulator.faults.token_delay = 0.05
    async with (
        httpx.AsyncClient(base_url=emulator.url) as http,
        http.stream("POST", "/api/generate", json={"model": CHAT, "prompt": PROMPT}) as response,
    ):
        lines = response.aiter_lines()
        first = json.loads(await anext(lines))
        assert emulator.active_responses == 1  # the rest is still being generated
        rest = [json.loads(line) async for line in lines if line]
    assert first["response"] == tokenize("Echo: " + PROMPT)[0]
    assert rest[-1]["done"] is True
