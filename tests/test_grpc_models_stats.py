"""ListModels and Stats over gRPC."""

from __future__ import annotations

import grpc
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import Stack, ollama_tags


async def test_list_models_carries_ollamas_details(stack: Stack, emulator: Emulator) -> None:
    reply = await stack.stub.ListModels(pb.ListModelsRequest())
    tags = ollama_tags(emulator)
    assert [m.name for m in reply.models] == [t["name"] for t in tags]
    for model, tag in zip(reply.models, tags, strict=True):
        assert model.size == tag["size"]
        assert model.modified_at == tag["modified_at"]
        assert model.digest == tag["digest"]
        assert model.details.family == tag["details"]["family"]
        assert model.details.parameter_size == tag["details"]["parameter_size"]
        assert model.details.quantization_level == tag["details"]["quantization_level"]
        assert model.details.format == tag["details"]["format"]
    kinds = {m.name: m.embedding for m in reply.models}
    assert kinds["bge-m3:latest"] is True
    assert kinds["gpt-oss:20b"] is False


async def test_list_models_when_ollama_is_broken(stack: Stack, emulator: Emulator) -> None:
    emulator.faults.tags_error_status = 500
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.ListModels(pb.ListModelsRequest())
    assert err.value.code() == grpc.StatusCode.INTERNAL


async def test_stats_add_up_after_mixed_traffic(stack: Stack, emulator: Emulator) -> None:
    ok = await stack.stub.Chat(pb.ChatRequest(message="one two", model="llama3.2"))
    ok2 = await stack.stub.Chat(pb.ChatRequest(message="three", model="gpt-oss:20b"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stack.stub.Chat(pb.ChatRequest(message="x", model="missing-model"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stack.stub.Chat(pb.ChatRequest(message=""))
    emulator.faults.busy = True
    with pytest.raises(grpc.aio.AioRpcError):
        await stack.stub.Chat(pb.ChatRequest(message="x", model="llama3.2"))

    stats = await stack.stub.Stats(pb.StatsRequest())
    t = stats.totals
    assert t.total_requests == 5
    assert t.successful_requests == 2
    assert t.failed_requests == 3
    assert t.total_requests == t.successful_requests + t.failed_requests + t.cancelled_requests
    assert dict(t.failures_by_kind) == {
        "model_not_found": 1,
        "invalid_argument": 1,
        "ollama_busy": 1,
    }
    assert t.prompt_tokens == ok.prompt_tokens + ok2.prompt_tokens
    assert t.response_tokens == ok.response_tokens + ok2.response_tokens
    assert t.total_tokens == t.prompt_tokens + t.response_tokens
    assert 0 < t.p50_generation_time_ms <= t.p95_generation_time_ms
    assert stats.per_model["llama3.2"].total_requests == 2
    assert stats.per_model["llama3.2"].successful_requests == 1
    assert stats.per_model["gpt-oss:20b"].successful_requests == 1
    # Unknown model names do not get buckets of their own.
    assert "missing-model" not in stats.per_model
    assert stats.per_method["Chat"].total_requests == 5
    assert stats.last_request_time.seconds > 0
    assert stats.uptime_seconds > 0
    assert stats.configuration.ollama_base_url == stack.settings.ollama_base_url
