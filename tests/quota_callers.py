"""Callers for the quota tests: a "limited" caller with the limits a test names and a
"free" one without any, and a stack where the limited caller's one generation runs."""

from __future__ import annotations

from pathlib import Path

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from rest_shim.stub import StreamCall
from server.config import Settings
from tests.conftest import Stack, StackFactory, bearer
from tests.streams import next_event

LIMITED_KEY = "limited-key"
FREE_KEY = "free-key"
MODEL = "llama3.2"


def callers(tmp_path: Path, limits: str) -> Settings:
    path = tmp_path / "callers.toml"
    path.write_text(
        f'[[caller]]\nname = "limited"\nkey = "{LIMITED_KEY}"\n{limits}\n\n'
        f'[[caller]]\nname = "free"\nkey = "{FREE_KEY}"\n'
    )
    return Settings.from_env({"LLM_CALLERS_FILE": str(path)})


async def one_generation_running(
    make_stack: StackFactory, emulator: Emulator, tmp_path: Path
) -> tuple[Stack, StreamCall]:
    """A stack where the limited caller may run one generation at once, and that one
    running: a stream of the limited caller, its first event read, the answer long."""
    named = callers(tmp_path, "max_concurrent = 1")
    stack = await make_stack(
        callers=named.callers, data_dir=str(tmp_path / "data"), max_tokens=1_000_000
    )
    emulator.faults.answer_tokens = 100_000
    request = pb.ChatStreamRequest(request=pb.ChatRequest(message="long", model=MODEL))
    running = stack.stub.ChatStream(request, metadata=bearer(LIMITED_KEY))
    assert (await next_event(running)).content
    return stack, running
