"""Embeddings over gRPC (Embed) and REST (POST /embeddings) with bge-m3 by default."""

from __future__ import annotations

import math

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import Stack, embedding_dim

TEXTS = ["first text", "второй текст", "third, a little longer text"]


async def test_batch_comes_back_in_order(stack: Stack, emulator: Emulator) -> None:
    reply = await stack.stub.Embed(pb.EmbedRequest(input=TEXTS))
    (sent,) = emulator.requests_to("/api/embed")
    assert sent.body is not None
    assert sent.body["model"] == stack.settings.embedding_model
    assert sent.body["input"] == TEXTS
    dims = embedding_dim(emulator, stack.settings.embedding_model)
    assert reply.dimensions == dims
    assert len(reply.embeddings) == len(TEXTS)
    # Each vector is the one for its own text: embed each alone and compare.
    for text, vector in zip(TEXTS, reply.embeddings, strict=True):
        alone = await stack.stub.Embed(pb.EmbedRequest(input=[text]))
        assert list(alone.embeddings[0].values) == pytest.approx(list(vector.values))
        assert len(vector.values) == dims
        assert math.sqrt(sum(v * v for v in vector.values)) == pytest.approx(1.0, abs=1e-4)
    assert reply.prompt_tokens == sum(len(t.split()) for t in TEXTS)


async def test_empty_input_is_invalid(stack: Stack, emulator: Emulator) -> None:
    for request in (pb.EmbedRequest(), pb.EmbedRequest(input=["ok", " "])):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.stub.Embed(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "input" in (err.value.details() or "")
    assert emulator.requests_to("/api/embed") == []


async def test_chat_only_model_is_a_clear_error(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Embed(pb.EmbedRequest(input=["x"], model="gpt-oss:20b"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "gpt-oss:20b" in (err.value.details() or "")
    assert "embed" in (err.value.details() or "")


async def test_rest_embeddings_one_text_and_a_list(
    rest: httpx.AsyncClient, stack: Stack, emulator: Emulator
) -> None:
    one = await rest.post("/embeddings", json={"input": "just one"})
    assert one.status_code == 200
    body = one.json()
    assert body["status"] == "success"
    assert len(body["embeddings"]) == 1
    assert body["dimensions"] == embedding_dim(emulator, stack.settings.embedding_model)
    assert len(body["embeddings"][0]) == body["dimensions"]
    many = await rest.post("/embeddings", json={"input": TEXTS, "model": "bge-m3"})
    assert many.status_code == 200
    assert len(many.json()["embeddings"]) == len(TEXTS)
    assert many.json()["prompt_tokens"] == sum(len(t.split()) for t in TEXTS)


@pytest.mark.parametrize(
    ("payload", "status"),
    [({}, 422), ({"input": 5}, 422), ({"input": []}, 400), ({"input": ""}, 400)],
)
async def test_rest_embeddings_bad_input(
    rest: httpx.AsyncClient, payload: dict[str, object], status: int
) -> None:
    r = await rest.post("/embeddings", json=payload)
    assert r.status_code == status
    assert "input" in r.json()["detail"]
