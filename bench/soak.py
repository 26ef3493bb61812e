"""The soak phase: minutes of clients that leave at random moments, then the counters.

Clients stream chats from the fast stack and go away at random: mid-request, right
after sending it, after a random part of the answer, after stopping to read for a
while (a small receive buffer, so the service's writes back up), or at the end. REST
clients (``/chat/stream`` and ``/v1/chat/completions``) are raw sockets, so a cut is a
real cut; gRPC clients cancel after a random number of messages. At the end the
service must be idle and every request it accepted counted once:
``running == queued == 0`` and ``total == successes + failures + cancellations``.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import grpc

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from tests.raw_http import connect, stream_request

JsonDict = dict[str, Any]
MODEL = "llama3.2"
MOMENTS = ("request", "sent", "read", "stall", "end")
SETTLE_TIMEOUT = 30.0


async def _rest_client(base: str, rng: random.Random) -> str:
    """One REST stream that ends at a random moment; returns the moment."""
    path = rng.choice(("/chat/stream", "/v1/chat/completions"))
    moment = rng.choice(MOMENTS)
    request = stream_request(base, path, "w " * rng.randint(1, 200))
    reader, writer = await connect(base, receive_buffer=4096 if moment == "stall" else None)
    try:
        if moment == "request":
            writer.write(request[: rng.randrange(len(request))])
        else:
            writer.write(request)
        await writer.drain()
        if moment in ("request", "sent"):
            return moment
        if moment == "end":
            while await reader.read(65536):
                pass
            return moment
        budget = rng.randint(0, 50_000)
        while budget > 0 and (data := await reader.read(min(budget, 65536))):
            budget -= len(data)
        if moment == "stall":
            await asyncio.sleep(rng.uniform(0, 1.0))  # stops reading for a while
        return moment
    finally:
        writer.transport.abort()


async def _grpc_client(stub: pb_grpc.LlmServiceAsyncStub, rng: random.Random) -> str:
    request = pb.ChatStreamRequest(
        request=pb.ChatRequest(message="w " * rng.randint(1, 200), model=MODEL)
    )
    call = stub.ChatStream(request)
    reads = rng.randint(0, 250)
    try:
        for _ in range(reads):
            if not isinstance(await call.read(), pb.ChatStreamResponse):  # EOF
                return "end"
    except grpc.aio.AioRpcError:
        return "failed"
    finally:
        call.cancel()
    return "grpc-cancel"


async def _stats(stub: pb_grpc.LlmServiceAsyncStub) -> pb.StatsResponse:
    return await stub.Stats(pb.StatsRequest(), timeout=10)


async def soak(grpc_target: str, rest_url: str, duration: float, clients: int) -> JsonDict:
    """Runs ``clients`` concurrent clients for ``duration`` seconds, then checks the
    service's counters once it has settled."""
    rng = random.Random(13)
    moments: dict[str, int] = {}
    errors: dict[str, int] = {}
    options = [("grpc.enable_http_proxy", 0)]
    async with grpc.aio.insecure_channel(grpc_target, options=options) as channel:
        stub = pb_grpc.LlmServiceStub(channel)
        before = await _stats(stub)
        end = time.monotonic() + duration
        started = 0

        async def worker() -> None:
            nonlocal started
            while time.monotonic() < end:
                started += 1
                try:
                    if rng.random() < 0.25:
                        moment = await _grpc_client(stub, rng)
                    else:
                        moment = await _rest_client(rest_url, rng)
                except OSError as exc:
                    moment = "client-error"
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                moments[moment] = moments.get(moment, 0) + 1

        await asyncio.gather(*(worker() for _ in range(clients)))
        settle_end = time.monotonic() + SETTLE_TIMEOUT
        after = await _stats(stub)
        while (after.running_generations or after.queued_generations) and (
            time.monotonic() < settle_end
        ):
            await asyncio.sleep(0.1)
            after = await _stats(stub)
    totals, first = after.totals, before.totals
    counted = totals.total_requests - first.total_requests
    outcomes = {
        "successes": totals.successful_requests - first.successful_requests,
        "failures": totals.failed_requests - first.failed_requests,
        "cancellations": totals.cancelled_requests - first.cancelled_requests,
    }
    return {
        "duration_s": duration,
        "clients": clients,
        "started": started,
        "moments": moments,
        "client_errors": errors,
        "counted": counted,
        **outcomes,
        "failures_by_kind": {
            k: v - first.failures_by_kind.get(k, 0) for k, v in totals.failures_by_kind.items()
        },
        "running_at_end": after.running_generations,
        "queued_at_end": after.queued_generations,
        "counts_add_up": counted == sum(outcomes.values()),
    }
