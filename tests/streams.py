"""Reading a ChatStream call in tests, typed: a channel's call and the in-process
stub's alike (``rest_shim.stub.StreamCall``: ``read()`` gives a message or EOF)."""

from __future__ import annotations

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.stub import StreamCall


async def next_event(call: StreamCall) -> pb.ChatStreamResponse:
    """The stream's next message (it must not have ended)."""
    event = await call.read()
    assert isinstance(event, pb.ChatStreamResponse), event
    return event


async def read_all(call: StreamCall) -> list[pb.ChatStreamResponse]:
    """The stream's messages to its end (EOF)."""
    events = []
    while isinstance(event := await call.read(), pb.ChatStreamResponse):
        events.append(event)
    return events
