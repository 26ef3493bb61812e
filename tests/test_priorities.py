"""Priorities and fairness when generations queue: an interactive caller goes before
every batch one, and batch callers take turns, so one with many requests queued cannot
starve another."""

from __future__ import annotations

import asyncio
from pathlib import Path

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from server.config import Settings
from tests.conftest import StackFactory
from tests.streams import next_event

MODEL = "llama3.2"
CALLERS = """
[[caller]]
name = "flood"
key = "flood-key"
priority = "batch"

[[caller]]
name = "nightly"
key = "nightly-key"
priority = "batch"

[[caller]]
name = "gateway"
key = "gateway-key"
"""


async def test_interactive_first_then_batch_callers_in_turn(
    make_stack: StackFactory, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "callers.toml"
    path.write_text(CALLERS)
    named = Settings.from_env({"LLM_CALLERS_FILE": str(path)})
    stack = await make_stack(
        callers=named.callers, max_concurrent=1, max_queue=500, max_tokens=1_000_000
    )
    lane = stack.server.lanes.default

    async def chat(key: str, label: str) -> None:
        metadata = (("authorization", f"Bearer {key}"),)
        await stack.stub.Chat(pb.ChatRequest(message=label, model=MODEL), metadata=metadata)

    # The one slot, held by a long answer until the queue is set up.
    emulator.faults.answer_tokens = 100_000
    holder = stack.stub.ChatStream(
        pb.ChatStreamRequest(request=pb.ChatRequest(message="hold", model=MODEL)),
        metadata=(("authorization", "Bearer flood-key"),),
    )
    assert (await next_event(holder)).content
    emulator.faults.answer_tokens = None

    # Each request is queued before the next is sent: calls sent together may reach the
    # service in any order, and the order each caller's requests arrive is what it keeps.
    tasks = []
    for i in range(200):  # the flood comes first
        tasks.append(asyncio.create_task(chat("flood-key", f"flood-{i}")))
        await lane.wait_until_queued(i + 1)
    for i in range(3):
        tasks.append(asyncio.create_task(chat("nightly-key", f"nightly-{i}")))
        await lane.wait_until_queued(201 + i)
    tasks.append(asyncio.create_task(chat("gateway-key", "gateway")))
    await lane.wait_until_queued(204)

    holder.cancel()
    await asyncio.gather(*tasks)
    # One slot: Ollama is asked in the order the service served them (the answers may
    # reach their callers in another order, each on its own stream).
    asked = [r.body["messages"][-1]["content"] for r in emulator.requests_to("/api/chat") if r.body]
    assert asked[0] == "hold"
    served = asked[1:]
    assert served[:7] == [
        "gateway",
        "flood-0",
        "nightly-0",
        "flood-1",
        "nightly-1",
        "flood-2",
        "nightly-2",
    ]
    assert served[7:] == [f"flood-{i}" for i in range(3, 200)]  # each caller's in order
