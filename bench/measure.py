"""Load shapes and what they measure: serial latency, closed-loop throughput, streams.

All loads are bounded twice: by a count or a duration, and by a hard timeout.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bench.targets import StreamTrace

# A load that has not drained this long after its end is cut short (and says so).
DRAIN_TIMEOUT = 30.0

Request = Callable[[], Awaitable[None]]
StreamRequest = Callable[[StreamTrace], Awaitable[None]]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Latency:
    """Milliseconds of ``count`` requests sent one after the other."""

    samples_ms: list[float]
    errors: int

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 0.99)


async def serial_latency(
    request: Request, count: int, on_complete: Callable[[], None] | None = None
) -> Latency:
    samples: list[float] = []
    errors = 0
    for _ in range(count):
        start = time.perf_counter()
        try:
            await request()
        except Exception:
            errors += 1
            continue
        samples.append((time.perf_counter() - start) * 1000.0)
        if on_complete is not None:
            on_complete()
    return Latency(samples, errors)


@dataclass
class Throughput:
    completed: int
    errors: int
    elapsed: float
    error_kinds: dict[str, int] = field(default_factory=dict)
    cut_short: bool = False

    @property
    def rps(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0


async def closed_loop(
    request: Request,
    concurrency: int,
    duration: float,
    on_complete: Callable[[], None] | None = None,
    max_requests: int | None = None,
) -> Throughput:
    """``concurrency`` workers, each sending its next request when the last one ends,
    until ``duration`` seconds have passed (or ``max_requests`` were started).
    Requests that finish after the end still count as errors when they fail, and are
    not counted as completed: the rate is completions within ``duration``."""
    start = time.perf_counter()
    end = start + duration
    completed = errors = started = 0
    kinds: Counter[str] = Counter()

    async def worker() -> None:
        nonlocal completed, errors, started
        while time.perf_counter() < end and (max_requests is None or started < max_requests):
            started += 1
            try:
                await request()
            except Exception as exc:
                errors += 1
                kinds[_describe(exc)] += 1
                continue
            if time.perf_counter() <= end:
                completed += 1
            if on_complete is not None:
                on_complete()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=duration + DRAIN_TIMEOUT)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    elapsed = min(time.perf_counter(), end) - start
    if max_requests is not None:
        elapsed = time.perf_counter() - start
    return Throughput(completed, errors, elapsed, dict(kinds), cut_short=bool(pending))


@dataclass
class Streams:
    """Streams run by ``concurrency`` workers for a while, token by token."""

    traces: list[StreamTrace]
    errors: int
    elapsed: float
    token_delay: float
    end: float
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return sum(1 for t in self.traces if t.done)

    @property
    def chunks(self) -> int:
        """Token chunks that arrived within the measured ``elapsed`` seconds."""
        return sum(1 for t in self.traces for a in t.arrivals if a <= self.end)

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.elapsed if self.elapsed > 0 else 0.0

    def lateness_ms(self) -> list[float]:
        """How late each token after the first arrived against the emulator's pace,
        counted from the stream's own first token: token ``i`` is due ``i * token_delay``
        after token 0. This is the relay's delay per token, without the set-up."""
        late: list[float] = []
        delay = self.token_delay
        for trace in self.traces:
            a = trace.arrivals
            late.extend((a[i] - a[0] - i * delay) * 1000.0 for i in range(1, len(a)))
        return late

    def first_token_ms(self) -> list[float]:
        """Time to the first token, less the one token delay the emulator waits."""
        return [
            (t.arrivals[0] - t.start - self.token_delay) * 1000.0 for t in self.traces if t.arrivals
        ]

    def gaps_ms(self) -> list[float]:
        """Time between consecutive tokens of the same stream."""
        gaps: list[float] = []
        for trace in self.traces:
            a = trace.arrivals
            gaps.extend((a[i] - a[i - 1]) * 1000.0 for i in range(1, len(a)))
        return gaps


async def stream_load(
    stream: StreamRequest,
    concurrency: int,
    duration: float,
    token_delay: float,
    drain: float,
    stagger: float = 0.0,
) -> Streams:
    """Each worker starts streams back to back until ``duration`` has passed. The
    workers' first starts are spread evenly over ``stagger`` seconds (about one stream's
    length), as real streams are not in step with each other: otherwise every stream
    would be set up in the same instant, again and again.
    Streams still open ``drain`` seconds after the end are cancelled. Chunks are
    counted up to the end of ``duration`` only; lateness and gaps use every token that
    arrived, including those of streams that end (or were cut) after it."""
    start = time.perf_counter()
    end = start + duration
    traces: list[StreamTrace] = []
    errors = 0
    kinds: Counter[str] = Counter()

    async def worker(index: int) -> None:
        nonlocal errors
        if stagger > 0:
            await asyncio.sleep(stagger * index / concurrency)
        while time.perf_counter() < end:
            trace = StreamTrace(time.perf_counter())
            traces.append(trace)
            try:
                await stream(trace)
            except Exception as exc:
                errors += 1
                kinds[_describe(exc)] += 1

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=duration + drain)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return Streams(traces, errors, duration, token_delay, end, dict(kinds))
