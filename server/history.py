"""The recent past, in memory and bounded, for the operator console (through Stats).

- the last 15 minutes of generation requests in 10-second slices: requests, failures,
  cancellations, and the p50/p95 latency of the successes (from at most
  ``MAX_SAMPLES`` latencies a slice, a uniform sample beyond that);
- the latest ``MAX_FAILURES`` failed requests: when, request id, method, model, error
  code, gRPC status, Ollama host and duration; never the prompt, the answer or the
  error's text (which may quote the caller's input);
- each model's requests and tokens since 00:00 UTC.

``StatsRecorder`` feeds it where every request ends, and fills the Stats reply from it.
The host a request went to is the call's (``Call.host``, set by the host pool on every
attempt).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from generated.llm.v1 import llm_service_pb2 as pb

if TYPE_CHECKING:
    from server.stats import RequestRecord

BUCKET_SECONDS = 10
WINDOW_SECONDS = 15 * 60
BUCKETS = WINDOW_SECONDS // BUCKET_SECONDS
MAX_FAILURES = 100
MAX_SAMPLES = 512
MAX_MODELS = 64
OTHER_MODEL = "other"
DAY_SECONDS = 24 * 3600


def model_key(model: str, held: Collection[str]) -> str:
    """``model``'s key in a per-model table holding ``held``: "other" once the table
    holds MAX_MODELS models (and for no model)."""
    if model and (model in held or len(held) < MAX_MODELS):
        return model
    return OTHER_MODEL


def nearest_rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values; 0 when there are none."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class _Slice:
    index: int  # start time // BUCKET_SECONDS
    requests: int = 0
    failures: int = 0
    cancelled: int = 0
    successes: int = 0
    latencies: list[float] = field(default_factory=list)
    # p50 and p95, computed once the slice is over (it no longer changes then)
    summary: tuple[float, float] | None = None

    def add(self, outcome: str, duration_ms: float, rng: random.Random) -> None:
        self.requests += 1
        if outcome == "failure":
            self.failures += 1
        elif outcome == "cancelled":
            self.cancelled += 1
        else:
            self.successes += 1
            if len(self.latencies) < MAX_SAMPLES:
                self.latencies.append(duration_ms)
            else:  # reservoir sampling: every success equally likely to be kept
                slot = rng.randrange(self.successes)
                if slot < MAX_SAMPLES:
                    self.latencies[slot] = duration_ms

    def percentiles(self, over: bool) -> tuple[float, float]:
        if self.summary is not None:
            return self.summary
        ordered = sorted(self.latencies)
        result = nearest_rank(ordered, 0.50), nearest_rank(ordered, 0.95)
        if over:
            self.summary = result
        return result


@dataclass(frozen=True)
class _Failure:
    at: float
    request_id: str
    method: str
    model: str
    code: str
    status: str
    host: str
    duration_ms: float


@dataclass
class _ModelDay:
    requests: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0


class History:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._started = clock()
        self._slices: deque[_Slice] = deque()
        self._failures: deque[_Failure] = deque(maxlen=MAX_FAILURES)
        self._day = int(self._started // DAY_SECONDS)
        self._models: defaultdict[str, _ModelDay] = defaultdict(_ModelDay)
        self._rng = random.Random(0)

    def record(self, r: RequestRecord) -> None:
        now = self._clock()
        index = int(now // BUCKET_SECONDS)
        self._prune(index)
        if not self._slices or self._slices[-1].index < index:
            self._slices.append(_Slice(index))
        # a clock that stepped back counts in the latest slice
        self._slices[-1].add(r.outcome.value, r.duration_ms, self._rng)
        if r.outcome.value == "failure":
            self._failures.append(
                _Failure(
                    now,
                    r.request_id,
                    r.method,
                    r.model,
                    r.error_code or "unknown",
                    r.status,
                    r.host,
                    r.duration_ms,
                )
            )
        self._roll_day(now)
        day = self._models[model_key(r.model, self._models)]
        day.requests += 1
        day.failures += int(r.outcome.value == "failure")
        day.prompt_tokens += r.prompt_tokens
        day.response_tokens += r.response_tokens

    def _prune(self, index: int) -> None:
        while self._slices and self._slices[0].index <= index - BUCKETS:
            self._slices.popleft()

    def _roll_day(self, now: float) -> None:
        day = int(now // DAY_SECONDS)
        if day > self._day:
            self._day = day
            self._models.clear()

    def fill(self, reply: pb.StatsResponse) -> None:
        """Sets the history fields of a Stats reply: every slice of the window since the
        server started (empty ones too), oldest first; the failures, newest first; the
        models' day."""
        now = self._clock()
        index = int(now // BUCKET_SECONDS)
        self._prune(index)
        self._roll_day(now)
        slices = {s.index: s for s in self._slices}
        first = max(index - BUCKETS + 1, int(self._started // BUCKET_SECONDS))
        for i in range(first, index + 1):
            start = i * BUCKET_SECONDS
            bucket = reply.history.add(
                seconds=BUCKET_SECONDS,
                elapsed_seconds=BUCKET_SECONDS if i < index else max(0.0, now - start),
            )
            bucket.start.FromSeconds(start)
            found = slices.get(i)
            if found is not None:
                p50, p95 = found.percentiles(over=i < index)
                bucket.requests = found.requests
                bucket.failures = found.failures
                bucket.cancelled = found.cancelled
                bucket.p50_latency_ms = p50
                bucket.p95_latency_ms = p95
        for f in reversed(self._failures):
            failure = reply.recent_failures.add(
                request_id=f.request_id,
                method=f.method,
                model=f.model,
                code=f.code,
                status=f.status,
                host=f.host,
                duration_ms=f.duration_ms,
            )
            failure.time.FromDatetime(datetime.fromtimestamp(f.at, UTC))
        for name, day in sorted(self._models.items()):
            reply.models_today.add(
                model=name,
                requests=day.requests,
                failures=day.failures,
                prompt_tokens=day.prompt_tokens,
                response_tokens=day.response_tokens,
            )
        since = max(self._day * DAY_SECONDS, self._started)
        reply.today_since.FromDatetime(datetime.fromtimestamp(since, UTC))
