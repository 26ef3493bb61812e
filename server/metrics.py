"""Prometheus metrics of the gRPC server, named after what operators know from vLLM.

Each server owns its registry (no process-wide state). Generation requests are
observed once, where they end (``observe``), from the same record the Stats RPC counts,
so both show the same picture. Labels are bounded: model names Ollama does not list
(nor the configured defaults) are folded into "other"; no prompt text, no caller ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.config import without_credentials
from server.stats import Outcome, RequestRecord

OTHER = "other"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60)
TPOT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.5, 1)


class _Live(Collector):
    """Gauges read at scrape time: running/waiting generations and host health."""

    def __init__(
        self,
        running: Callable[[], int],
        waiting: Callable[[], int],
        hosts: Callable[[], Iterable[tuple[str, bool, int]]],
        retries: Callable[[], int],
        limits: tuple[int, int],
        lanes: Callable[[], Iterable[tuple[str, int, int, int]]] = lambda: (),
    ) -> None:
        self._running, self._waiting, self._hosts, self._retries = running, waiting, hosts, retries
        self._limits = limits
        self._lanes = lanes

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "llm_max_concurrent_requests", "LLM_MAX_CONCURRENT.", value=self._limits[0]
        )
        yield GaugeMetricFamily("llm_max_waiting_requests", "LLM_MAX_QUEUE.", value=self._limits[1])
        yield GaugeMetricFamily(
            "llm_num_requests_running", "Generations running now.", value=self._running()
        )
        yield GaugeMetricFamily(
            "llm_num_requests_waiting", "Generations waiting for a slot.", value=self._waiting()
        )
        limit = GaugeMetricFamily(
            "llm_lane_slots", "Generation slots of a lane (LLM_MODEL_LIMITS).", labels=["lane"]
        )
        running = GaugeMetricFamily(
            "llm_lane_running", "Generations running in a lane.", labels=["lane"]
        )
        waiting = GaugeMetricFamily(
            "llm_lane_waiting", "Generations waiting in a lane.", labels=["lane"]
        )
        for name, slots, now, queued in self._lanes():
            limit.add_metric([name], float(slots))
            running.add_metric([name], float(now))
            waiting.add_metric([name], float(queued))
        yield limit
        yield running
        yield waiting
        up = GaugeMetricFamily(
            "llm_ollama_host_up", "1 while an Ollama host is up.", labels=["host"]
        )
        busy = GaugeMetricFamily(
            "llm_ollama_host_in_flight", "Requests in flight per Ollama host.", labels=["host"]
        )
        for url, is_up, in_flight in self._hosts():
            host = without_credentials(url)
            up.add_metric([host], 1.0 if is_up else 0.0)
            busy.add_metric([host], float(in_flight))
        yield up
        yield busy
        yield CounterMetricFamily(
            "llm_ollama_retries",
            "Requests moved to another Ollama host before anything was generated.",
            value=self._retries(),
        )


class Metrics:
    def __init__(self, known_models: Callable[[], set[str]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self._known = known_models
        # Models that answered: real names, so bounded by what Ollama has.
        self._answered: set[str] = set()
        r = self.registry
        self.requests = Counter(
            "llm_requests",
            "Generation requests by RPC, model, outcome and gRPC status code.",
            ["method", "model", "outcome", "code"],
            registry=r,
        )
        self.cancellations = Counter(
            "llm_request_cancellations",
            "Requests the caller cancelled (or whose deadline passed) mid-way.",
            ["method", "model"],
            registry=r,
        )
        self.latency = Histogram(
            "llm_e2e_request_latency_seconds",
            "End-to-end latency of successful generations.",
            ["method", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "llm_time_to_first_token_seconds",
            "Time to the first streamed token.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "llm_time_per_output_token_seconds",
            "Generation time per output token (Ollama's eval_duration / eval_count).",
            ["model"],
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "llm_prompt_tokens", "Prompt tokens Ollama processed.", ["model"], registry=r
        )
        self.generation_tokens = Counter(
            "llm_generation_tokens", "Tokens Ollama generated.", ["model"], registry=r
        )
        self.caller_requests = Counter(
            "llm_caller_requests",
            "Generation requests by caller (names of LLM_CALLERS_FILE, never keys) and outcome.",
            ["caller", "outcome"],
            registry=r,
        )
        self.caller_tokens = Counter(
            "llm_caller_tokens",
            "Prompt and generated tokens by caller, as the upstream counted them.",
            ["caller", "kind"],
            registry=r,
        )
        self.fallbacks = Counter(
            "llm_fallbacks",
            "Requests a fallback model answered (LLM_FALLBACKS): asked for, answered by.",
            ["model", "fallback"],
            registry=r,
        )

    def watch(self, live: Collector) -> None:
        self.registry.register(live)

    def answered(self, model: str) -> None:
        """``model`` answered a request: a real name, kept as a label from now on."""
        if model:
            self._answered.add(model)

    def label(self, model: str) -> str:
        """``model`` if Ollama lists it (or it answered), else "other": the one folding
        of caller-given names, used by the metrics and by Stats alike."""
        if not model:
            return OTHER
        if model in self._answered:
            return model
        known = self._known()
        if model in known or f"{model}:latest" in known:
            return model
        return OTHER

    def observe(self, r: RequestRecord, code: str) -> None:
        """Counts ``r``, whose model is already a label (see ``label``)."""
        model = r.model
        self.requests.labels(r.method, model, r.outcome.value, code).inc()
        self.caller_requests.labels(r.caller, r.outcome.value).inc()
        if r.prompt_tokens:
            self.caller_tokens.labels(r.caller, "prompt").inc(r.prompt_tokens)
        if r.response_tokens:
            self.caller_tokens.labels(r.caller, "response").inc(r.response_tokens)
        if r.fallback_from:
            self.fallbacks.labels(r.fallback_from, model).inc()
        if r.outcome is Outcome.CANCELLED:
            self.cancellations.labels(r.method, model).inc()
            return
        if r.outcome is not Outcome.SUCCESS:
            return
        self.latency.labels(r.method, model).observe(r.duration_ms / 1000.0)
        if r.time_to_first_token_ms is not None:
            self.ttft.labels(model).observe(r.time_to_first_token_ms / 1000.0)
        if r.tokens_per_second:
            self.tpot.labels(model).observe(1.0 / r.tokens_per_second)
        if r.prompt_tokens:
            self.prompt_tokens.labels(model).inc(r.prompt_tokens)
        if r.response_tokens:
            self.generation_tokens.labels(model).inc(r.response_tokens)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Counters(Collector):
    """Counters kept elsewhere, read at scrape time: (name, help, value)."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        for name, documentation, value in self._read():
            yield CounterMetricFamily(name, documentation, value=value)


# The collectors a server hands to ``Metrics.watch``.
live_collector = _Live
counters = _Counters
