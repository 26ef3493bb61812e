"""Request counters and latencies since start, in total, per model and per RPC.

Every accepted generation request ends in exactly one ``record`` call with one
outcome, so ``total = successes + failures + cancellations`` always holds.
Latency percentiles come from a bounded window of the most recent requests.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from generated.llm.v1 import llm_service_pb2 as pb
from server.history import History, model_key, nearest_rank

WINDOW = 2048


class Outcome(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RequestRecord:
    method: str
    model: str
    outcome: Outcome
    duration_ms: float
    error_code: str = ""
    prompt_tokens: int = 0
    response_tokens: int = 0
    stream: bool = False
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    # The model asked for, when a fallback (model) answered instead.
    fallback_from: str = ""
    caller: str = "anonymous"
    # for the recent failures (server.history): never the prompt or the error's text
    request_id: str = ""
    host: str = ""
    status: str = ""


@dataclass
class _Bucket:
    successes: int = 0
    failures: int = 0
    cancelled: int = 0
    streams: int = 0
    fallbacks: int = 0
    failures_by_kind: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    response_tokens: int = 0
    duration_sum_ms: float = 0.0
    durations_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    ttft_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    tps: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    @property
    def total(self) -> int:
        return self.successes + self.failures + self.cancelled

    def add(self, r: RequestRecord) -> None:
        self.streams += int(r.stream)
        self.fallbacks += int(bool(r.fallback_from))
        if r.outcome is Outcome.SUCCESS:
            self.successes += 1
            self.prompt_tokens += r.prompt_tokens
            self.response_tokens += r.response_tokens
            self.duration_sum_ms += r.duration_ms
            self.durations_ms.append(r.duration_ms)
            if r.tokens_per_second is not None:
                self.tps.append(r.tokens_per_second)
        elif r.outcome is Outcome.FAILURE:
            self.failures += 1
            self.failures_by_kind[r.error_code or "unknown"] += 1
        else:
            self.cancelled += 1
        if r.time_to_first_token_ms is not None:
            self.ttft_ms.append(r.time_to_first_token_ms)

    def to_proto(self) -> pb.Counters:
        durations = sorted(self.durations_ms)
        return pb.Counters(
            total_requests=self.total,
            successful_requests=self.successes,
            failed_requests=self.failures,
            cancelled_requests=self.cancelled,
            failures_by_kind=dict(self.failures_by_kind),
            prompt_tokens=self.prompt_tokens,
            response_tokens=self.response_tokens,
            total_tokens=self.prompt_tokens + self.response_tokens,
            average_generation_time_ms=(
                self.duration_sum_ms / self.successes if self.successes else 0.0
            ),
            p50_generation_time_ms=nearest_rank(durations, 0.50),
            p95_generation_time_ms=nearest_rank(durations, 0.95),
            average_time_to_first_token_ms=_mean(self.ttft_ms),
            average_tokens_per_second=_mean(self.tps),
            streams=self.streams,
            fallbacks=self.fallbacks,
        )


def _mean(values: deque[float]) -> float:
    return statistics.fmean(values) if values else 0.0


class StatsRecorder:
    def __init__(self) -> None:
        self._totals = _Bucket()
        self._models: defaultdict[str, _Bucket] = defaultdict(_Bucket)
        self._methods: defaultdict[str, _Bucket] = defaultdict(_Bucket)
        self._callers: defaultdict[str, _Bucket] = defaultdict(_Bucket)
        self._started_wall = datetime.now(UTC)
        self._started = time.monotonic()
        self._last_request: datetime | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.history = History()

    def record(self, r: RequestRecord) -> None:
        self._last_request = datetime.now(UTC)
        self._totals.add(r)
        self._wake()
        self._models[model_key(r.model, self._models)].add(r)
        self._methods[r.method].add(r)
        self._callers[r.caller].add(r)  # configured names only
        self.history.record(r)

    def _wake(self) -> None:
        waiting = []
        for target, future in self._waiters:
            if self._totals.total >= target:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((target, future))
        self._waiters = waiting

    async def wait_for_total(self, count: int) -> None:
        """Returns once ``count`` requests have ended (whatever their outcome)."""
        if self._totals.total >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        await future

    def snapshot(self, configuration: pb.Configuration) -> pb.StatsResponse:
        response = pb.StatsResponse(
            totals=self._totals.to_proto(),
            per_model={k: b.to_proto() for k, b in self._models.items()},
            per_method={k: b.to_proto() for k, b in self._methods.items()},
            per_caller={k: b.to_proto() for k, b in self._callers.items()},
            uptime_seconds=time.monotonic() - self._started,
            configuration=configuration,
        )
        response.started_at.FromDatetime(self._started_wall)
        if self._last_request is not None:
            response.last_request_time.FromDatetime(self._last_request)
        response.timestamp.GetCurrentTime()
        self.history.fill(response)
        return response
