"""The real-model phase: what the service adds in front of a real engine.

llama.cpp's ``llama-server`` with SmolLM2-135M (``tests/realmodel.py``, built once and
cached), and the service in front of it as its one OpenAI-kind upstream
(``LLM_UPSTREAMS=real=openai+<url>``, ``python -m server --with-rest``), each its own
process. The same streamed chat (system and user message, ``temperature: 0``, a fixed
``max_tokens`` that the prompt asks more than, seed 42) goes straight to llama-server's
``/v1/chat/completions`` (direct) and through every face: gRPC ``ChatStream``, REST
``/chat/stream``, OpenAI ``/v1/chat/completions`` and Ollama ``/api/chat``, one stream
at a time, the paths interleaved (direct, gRPC, REST, OpenAI, Ollama, direct, ...).

Per stream: time to first token (request sent to first content token arrived), tokens
per second after it ((tokens - 1) / (last token - first token)), the whole stream, and
the CPU the service and llama-server spent on it. Per round, the median of its streams;
"added" is the median over rounds of path minus direct, paired within each round. The
same prompt every time lets llama.cpp reuse its cached prompt on every path alike, so
the first token is mostly one decoding step plus the path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import httpx

from bench import measure, procs
from bench.config import REPO, Config
from bench.targets import BadAnswer, post_stream
from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc

JsonDict = dict[str, Any]
MODEL = "smollm2"
SYSTEM = "You are a helpful assistant."
PROMPT = "Tell me a long story about a cat who learns to fly."
TEMPERATURE, TOP_P, SEED = 0.0, 1.0, 42
SLOTS = 2
TIMEOUT = 120.0
# Below llama-server's and uvicorn's 5 s keep-alive: while the other paths run, a
# path's idle connection is dropped by the client first, not reused as the server
# closes it.
KEEPALIVE_EXPIRY = 2.0


@dataclass
class Trace:
    """One stream: when it was asked for, when each content token arrived, the text."""

    start: float
    arrivals: list[float] = field(default_factory=list)
    text: str = ""
    done: bool = False


class StreamPath(Protocol):
    name: str

    async def stream(self, trace: Trace) -> None: ...

    async def aclose(self) -> None: ...


Parse = Callable[[bytes], tuple[str, bool]]


def _sse(content: Callable[[JsonDict], tuple[str, bool]]) -> Parse:
    def parse(item: bytes) -> tuple[str, bool]:
        line = item.strip()
        if line.startswith(b"event: error"):
            raise BadAnswer(line[:300].decode(errors="replace"))
        if not line.startswith(b"data:"):
            return "", False
        data = line[5:].strip()
        if data == b"[DONE]":
            return "", True
        return content(json.loads(data))

    return parse


def _openai_chunk(chunk: JsonDict) -> tuple[str, bool]:
    choices = chunk.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or "", False


def _rest_event(event: JsonDict) -> tuple[str, bool]:
    return event.get("content") or "", bool(event.get("done"))


def _ollama_line(item: bytes) -> tuple[str, bool]:
    if not item.strip():
        return "", False
    line = json.loads(item)
    if "error" in line:
        raise BadAnswer(str(line["error"])[:300])
    return (line.get("message") or {}).get("content") or "", bool(line.get("done"))


class HttpPath:
    """POSTs one pre-serialised body and splits the streamed answer on ``separator``."""

    def __init__(
        self, name: str, base_url: str, path: str, body: JsonDict, separator: bytes, parse: Parse
    ) -> None:
        self.name = name
        limits = httpx.Limits(max_connections=1, keepalive_expiry=KEEPALIVE_EXPIRY)
        self._client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=TIMEOUT)
        self._path = path
        self._body = json.dumps(body, separators=(",", ":")).encode()
        self._separator = separator
        self._parse = parse

    async def stream(self, trace: Trace) -> None:
        def each(now: float, item: bytes) -> None:
            text, done = self._parse(item)
            if text:
                trace.arrivals.append(now)
                trace.text += text
            trace.done = trace.done or done

        await post_stream(self._client, self.name, self._path, self._body, self._separator, each)
        if not trace.done:
            raise BadAnswer(f"{self.name}: stream ended without its end")

    async def aclose(self) -> None:
        await self._client.aclose()


class GrpcPath:
    name = "grpc"

    def __init__(self, target: str, tokens: int) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = pb_grpc.LlmServiceStub(self._channel)
        self._request = pb.ChatStreamRequest(
            request=pb.ChatRequest(
                message=PROMPT,
                system=SYSTEM,
                model=MODEL,
                max_tokens=tokens,
                temperature=TEMPERATURE,
                top_p=TOP_P,
                seed=SEED,
            )
        )

    async def stream(self, trace: Trace) -> None:
        async for event in self._stub.ChatStream(self._request, timeout=TIMEOUT):
            if event.content:
                trace.arrivals.append(time.perf_counter())
                trace.text += event.content
            if event.done:
                trace.done = True
        if not trace.done:
            raise BadAnswer("grpc: stream ended without its final event")

    async def aclose(self) -> None:
        await self._channel.close(None)


def paths(llama_url: str, grpc_target: str, rest_url: str, tokens: int) -> list[StreamPath]:
    """The same chat, five ways; the direct body is the one the service sends upstream."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    sampling = {"temperature": TEMPERATURE, "top_p": TOP_P, "seed": SEED}
    openai_body = {
        "model": MODEL,
        "messages": messages,
        "max_tokens": tokens,
        **sampling,
        "stream": True,
    }
    upstream_body = {**openai_body, "stream_options": {"include_usage": True}}
    rest_body = {"message": PROMPT, "system": SYSTEM, "model": MODEL, "max_tokens": tokens}
    ollama_body = {
        "model": MODEL,
        "messages": messages,
        "options": {"num_predict": tokens, **sampling},
        "stream": True,
    }
    sse = _sse(_openai_chunk)
    return [
        HttpPath("direct", llama_url, "/v1/chat/completions", upstream_body, b"\n\n", sse),
        GrpcPath(grpc_target, tokens),
        HttpPath(
            "rest", rest_url, "/chat/stream", {**rest_body, **sampling}, b"\n\n", _sse(_rest_event)
        ),
        HttpPath("openai", rest_url, "/v1/chat/completions", openai_body, b"\n\n", sse),
        HttpPath("ollama", rest_url, "/api/chat", ollama_body, b"\n", _ollama_line),
    ]


def _record(trace: Trace, end: float, cpu: dict[str, float]) -> JsonDict:
    a = trace.arrivals
    return {
        "ttft_ms": (a[0] - trace.start) * 1000.0 if a else float("nan"),
        "tokens_per_s": (len(a) - 1) / (a[-1] - a[0]) if len(a) > 1 and a[-1] > a[0] else 0.0,
        "total_ms": (end - trace.start) * 1000.0,
        "tokens": len(a),
        "cpu_ms": cpu,
        "answer": hashlib.sha256(trace.text.encode()).hexdigest()[:12],
    }


KEYS = ("ttft_ms", "tokens_per_s", "total_ms")


WHO = ("service", "llama")


async def _rounds(cfg: Config, targets: list[StreamPath], pids: dict[str, int]) -> JsonDict:
    """``pids``: the service's processes (names starting with "service") and "llama"."""

    async def one(target: StreamPath) -> JsonDict:
        before = {name: procs.proc_cpu_seconds(pid) for name, pid in pids.items()}
        trace = Trace(time.perf_counter())
        await target.stream(trace)
        end = time.perf_counter()
        used = {n: (procs.proc_cpu_seconds(p) - before[n]) * 1000.0 for n, p in pids.items()}
        cpu = {
            "service": sum(v for n, v in used.items() if n.startswith("service")),
            "llama": used["llama"],
        }
        return _record(trace, end, {k: round(v, 2) for k, v in cpu.items()})

    for target in targets:  # warm-up: connections, the prompt in llama.cpp's cache
        await one(target)
    rounds: list[JsonDict] = []
    errors = {t.name: 0 for t in targets}
    answers: dict[str, set[str]] = {t.name: set() for t in targets}
    pooled: dict[str, dict[str, list[float]]] = {t.name: {k: [] for k in KEYS} for t in targets}
    for _ in range(cfg.rounds):
        streams: dict[str, list[JsonDict]] = {t.name: [] for t in targets}
        for _ in range(cfg.realmodel_streams):
            for target in targets:
                try:
                    streams[target.name].append(await one(target))
                except Exception:
                    errors[target.name] += 1
        row: JsonDict = {}
        for name, done in streams.items():
            row[name] = {k: measure.median([s[k] for s in done]) for k in KEYS}
            row[name]["tokens"] = measure.median([s["tokens"] for s in done])
            # CPU time is counted in clock ticks (10 ms): the mean of the round, not a median
            for who in WHO:
                spent = [s["cpu_ms"][who] for s in done]
                row[name][f"{who}_cpu_ms"] = sum(spent) / len(spent) if spent else float("nan")
            row[name]["streams"] = done
            for s in done:
                answers[name].add(s["answer"])
                for k in KEYS:
                    pooled[name][k].append(s[k])
        rounds.append(row)
    names = [t.name for t in targets]
    stat_keys = (*KEYS, "tokens", *(f"{who}_cpu_ms" for who in WHO))
    median = {n: {k: measure.median([r[n][k] for r in rounds]) for k in stat_keys} for n in names}
    added = {
        n: {k: measure.median([r[n][k] - r["direct"][k] for r in rounds]) for k in KEYS}
        for n in names
        if n != "direct"
    }
    spread = {
        k: measure.percentile(pooled["direct"][k], 0.9)
        - measure.percentile(pooled["direct"][k], 0.1)
        for k in KEYS
    }
    every = set().union(*answers.values())
    return {
        "rounds": rounds,
        "median": median,
        "added": added,
        "direct_spread_p10_p90": spread,
        "errors": errors,
        "same_answer_everywhere": len(every) == 1,
        "answers": {n: sorted(a) for n, a in answers.items()},
    }


def llama_argv(binary: Path, model: Path) -> list[str]:
    return [
        str(binary),
        "--model", str(model),
        "--alias", MODEL,
        "--parallel", str(SLOTS),
        "--ctx-size", str(2048 * SLOTS),
        # one thread: on two cores shared with the service and the bench, two ggml
        # threads that wait on each other at every step crawl (tests/realmodel.py)
        "--threads", "1",
    ]  # fmt: skip


def run_phase(cfg: Config, log_dir: Path) -> JsonDict:
    """Starts llama-server and the service in front of it, measures, stops both."""
    from tests.realmodel import ensure

    artifacts = ensure()
    argv = llama_argv(artifacts.binary, artifacts.model)
    started: list[procs.Proc] = []
    service: procs.Service | None = None
    try:
        llama = procs.start_llama_server("llama-server", argv, repo=REPO, log_dir=log_dir)
        started.append(llama.proc)
        env = {
            "LLM_MAX_CONCURRENT": str(cfg.max_concurrent),
            "LLM_MAX_QUEUE": str(cfg.max_concurrent),
            "LLM_KEY_MODELS": MODEL,
            "LLM_DEFAULT_MODEL": MODEL,
            **dict(cfg.server_env),
        }
        service = procs.start_service(
            "service-real",
            python=cfg.server_python,
            repo=cfg.server_dir,
            ollama_url="",
            upstreams=f"real=openai+{llama.url}",
            split=cfg.split,
            extra_env=env,
            log_dir=log_dir,
        )
        started.extend(service.procs)
        pids = {p.name: p.pid for p in service.procs} | {"llama": llama.proc.pid}

        async def measure_all() -> JsonDict:
            # the clients belong to this event loop: built in it
            targets = paths(llama.url, service.grpc_target, service.rest_url, cfg.realmodel_tokens)
            try:
                return await _rounds(cfg, targets, pids)
            finally:
                for target in targets:
                    await target.aclose()

        out = asyncio.run(measure_all())
        out["peak_rss_kb"] = {p.name: p.peak_rss_kb() for p in started}
        dead = [p.name for p in started if not p.alive()]
        if dead:
            out["dead_processes"] = {p.name: p.log_tail() for p in started if p.name in dead}
    finally:
        if service is not None:
            service.stop()
        for proc in started:
            proc.stop()
    out.update(
        {
            "model": f"{artifacts.model.name} as {MODEL!r}",
            "llama_server": [Path(a).name if a.startswith("/") else a for a in argv],
            "max_tokens": cfg.realmodel_tokens,
            "streams_per_round": cfg.realmodel_streams,
            "prompt": PROMPT,
        }
    )
    return out
