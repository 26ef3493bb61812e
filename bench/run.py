"""``python -m bench``: what the service costs on top of Ollama, measured side by side.

One run starts, each in its own process: an Ollama emulator answering at once, a
second one pacing tokens (``--token-delay``), and the service in front of each (by
default ``python -m server --with-rest``, what the Dockerfile runs). The bench itself
is the client, in this process. Every measurement is taken in interleaved rounds
(direct, gRPC, REST, direct, gRPC, REST, ...) and reported as the median of the
rounds: direct is the emulator's own /api/chat, so "added" = path minus direct.
The real-model phase (``bench/realmodel.py``) runs last, alone: llama.cpp's
llama-server with SmolLM2 and the service in front of it, streams straight and
through every face.

``main(argv)`` is the entry point (``main(["--quick"])``: a smoke run, under a minute);
``run(config)`` returns the results as a dict without printing or writing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ledger, measure, procs, profile, realmodel, report, soak
from bench.config import REPO, Config, parse
from bench.targets import (
    DirectTarget,
    GrpcTarget,
    LeanHttpTarget,
    OllamaFaceTarget,
    RestTarget,
    Target,
    words,
)

JsonDict = dict[str, Any]
# Pause between two measurements, so that closing one load's connections and streams
# does not run into the next one's measurement.
SETTLE = 0.3


@dataclass
class Stack:
    """One emulator and the service in front of it."""

    emulator: procs.Emulator
    service: procs.Service

    def procs(self, label: str) -> dict[str, procs.Proc]:
        named = {f"emulator-{label}": self.emulator.proc}
        for proc in self.service.procs:
            named[f"{proc.name}"] = proc
        return named


class RssProbe:
    """VmRSS of the service processes every ``step`` requests they served, up to ``last``."""

    def __init__(self, processes: dict[str, procs.Proc], step: int, last: int) -> None:
        self._procs = processes
        self.step = step
        self.last = last
        self.count = 0
        self.samples: list[JsonDict] = []

    def tick(self) -> None:
        self.count += 1
        if self.count % self.step == 0 and self.count <= self.last:
            sample: JsonDict = {"requests": self.count}
            sample.update({name: p.rss_kb() for name, p in self._procs.items()})
            self.samples.append(sample)

    @property
    def remaining(self) -> int:
        return max(0, self.last - self.count)

    def at(self, count: int) -> JsonDict | None:
        return next((s for s in self.samples if s["requests"] == count), None)


@dataclass
class Clients:
    fast: list[Target] = field(default_factory=list)
    paced: list[Target] = field(default_factory=list)

    async def aclose(self) -> None:
        for target in (*self.fast, *self.paced):
            await target.aclose()


def _by_name(targets: Sequence[Target], name: str) -> Target:
    return next(t for t in targets if t.name == name)


def _cpu_pids(stack: Stack, label: str) -> dict[str, int]:
    pids = {name: p.pid for name, p in stack.procs(label).items()}
    pids["client"] = os.getpid()
    return pids


@contextlib.contextmanager
def _stacks(cfg: Config, log_dir: Path) -> Iterator[tuple[Stack, Stack | None]]:
    """Starts the processes the phases need, and stops every one of them at the end."""
    started: list[procs.Emulator | procs.Service] = []
    python = sys.executable
    env = {"LLM_MAX_CONCURRENT": str(cfg.max_concurrent), "LLM_MAX_QUEUE": str(cfg.max_concurrent)}
    env.update(dict(cfg.server_env))

    def stack(label: str, delay: float) -> Stack:
        emulator = procs.start_emulator(
            f"emulator-{label}", python=python, repo=REPO, token_delay=delay, log_dir=log_dir
        )
        started.append(emulator)
        service = procs.start_service(
            f"service-{label}",
            python=cfg.server_python,
            repo=cfg.server_dir,
            ollama_url=emulator.url,
            split=cfg.split,
            # the usage ledger on (the default), in SQLite, as a service runs without settings
            extra_env={"LLM_DATA_DIR": str(log_dir / f"data-{label}"), **env},
            log_dir=log_dir,
        )
        started.append(service)
        return Stack(emulator, service)

    try:
        fast = stack("fast", 0.0)
        paced = stack("paced", cfg.token_delay) if "streams" in cfg.phases else None
        yield fast, paced
    finally:
        for item in reversed(started):
            if isinstance(item, procs.Service):
                item.stop()
            else:
                item.proc.stop()


def _per_unit(cores: dict[str, float], rate: float, scale: float) -> dict[str, float]:
    """CPU time each process spent per unit of work (request, chunk), in 1/``scale`` s."""
    if rate <= 0:
        return {}
    per = {name: used * scale / rate for name, used in cores.items() if name != "others"}
    per["service"] = sum(v for k, v in per.items() if k.startswith("service"))
    return {k: round(v, 4) for k, v in per.items()}


def _latency_json(lat: measure.Latency) -> JsonDict:
    return {"p50_ms": lat.p50, "p99_ms": lat.p99, "n": len(lat.samples_ms), "errors": lat.errors}


def _median_of(rounds: list[JsonDict], target: str, key: str) -> float:
    return measure.median([r[target][key] for r in rounds if target in r])


def _added(rounds: list[JsonDict], target: str, key: str) -> float:
    """Median over rounds of (path - direct) for ``key``, paired within each round."""
    return measure.median(
        [r[target][key] - r["direct"][key] for r in rounds if target in r and "direct" in r]
    )


def _stagger(cfg: Config, streams: int) -> float:
    """How long the stream starts are spread over: about one paced stream's length (its
    tokens, "Echo:" and one per word, times the delay), adjusted to a whole number of
    token delays ``m`` with no common factor with ``streams``. Stream ``i`` starts at
    ``i * m * delay / streams``, so every stream's tokens fall due at a phase of their
    own, ``delay / streams`` apart. With a spread that is a multiple of the delay over
    ``streams`` (2 s over 200), the streams fall into a few phases (10) and each token
    waits behind a burst of others due in the same instant (20), in every process on
    the way, the bench client included: the figure would be the burst, not the relay."""
    m = cfg.stream_words + 1
    while math.gcd(m, streams) != 1:
        m += 1
    return m * cfg.token_delay


async def _warm_up(cfg: Config, clients: Clients) -> None:
    for target in clients.fast:
        await measure.closed_loop(target.chat, cfg.concurrency, cfg.warmup)
    for target in clients.paced:  # opens as many connections as the streams need
        await measure.stream_load(
            target.stream,
            cfg.streams,
            cfg.warmup,
            cfg.token_delay,
            cfg.drain,
            _stagger(cfg, cfg.streams),
        )


async def _latency(cfg: Config, clients: Clients, probe: RssProbe | None) -> JsonDict:
    out = await _serial_rounds(cfg, clients.fast, probe)
    # The same, with the HTTP paths on a client as cheap as grpc.aio (not counted for RSS).
    lean = [t if t.name == "grpc" else LeanHttpTarget(t) for t in clients.fast]
    try:
        out["lean_http_client"] = await _serial_rounds(cfg, lean, None)
    finally:
        for target in lean:
            if isinstance(target, LeanHttpTarget):
                await target.aclose()
    out["requests_per_round"] = cfg.latency_requests
    return out


async def _serial_rounds(
    cfg: Config, targets: Sequence[Target], probe: RssProbe | None
) -> JsonDict:
    rounds: list[JsonDict] = []
    for _ in range(cfg.rounds):
        row: JsonDict = {}
        for target in targets:
            counted = probe.tick if probe is not None and target.name != "direct" else None
            row[target.name] = _latency_json(
                await measure.serial_latency(target.chat, cfg.latency_requests, counted)
            )
        rounds.append(row)
    names = [t.name for t in targets]
    return {
        "rounds": rounds,
        "median": {n: {k: _median_of(rounds, n, k) for k in ("p50_ms", "p99_ms")} for n in names},
        "added": {
            n: {k: _added(rounds, n, k) for k in ("p50_ms", "p99_ms")}
            for n in names
            if n != "direct"
        },
    }


async def _throughput(
    cfg: Config, clients: Clients, fast: Stack, probe: RssProbe | None
) -> JsonDict:
    rounds: list[JsonDict] = []
    meter = procs.CpuMeter(_cpu_pids(fast, "fast"))
    for _ in range(cfg.rounds):
        row: JsonDict = {}
        for target in clients.fast:
            counted = probe.tick if probe is not None and target.name != "direct" else None
            await asyncio.sleep(SETTLE)
            meter.start()
            result = await measure.closed_loop(target.chat, cfg.concurrency, cfg.duration, counted)
            cores = meter.stop()
            row[target.name] = {
                "rps": result.rps,
                "completed": result.completed,
                "errors": result.errors,
                "error_kinds": result.error_kinds,
                "cut_short": result.cut_short,
                "cpu_cores": cores,
                "cpu_ms_per_request": _per_unit(cores, result.rps, 1000.0),
            }
        rounds.append(row)
    names = [t.name for t in clients.fast]
    ratios = {
        n: measure.median([r[n]["rps"] / r["direct"]["rps"] for r in rounds if r["direct"]["rps"]])
        for n in names
        if n != "direct"
    }
    return {
        "concurrency": cfg.concurrency,
        "duration_s": cfg.duration,
        "rounds": rounds,
        "median_rps": {n: _median_of(rounds, n, "rps") for n in names},
        "ratio_to_direct": ratios,
        "errors": {n: sum(r[n]["errors"] for r in rounds) for n in names},
    }


async def _memory_top_up(cfg: Config, clients: Clients, probe: RssProbe) -> JsonDict:
    """Sends REST and gRPC chats, alternately, until the probe has its last sample."""
    rest, grpc_ = _by_name(clients.fast, "rest"), _by_name(clients.fast, "grpc")
    turns = itertools.cycle((rest, grpc_))

    async def mixed() -> None:
        await next(turns).chat()

    sent = probe.remaining
    result = await measure.closed_loop(
        mixed, cfg.concurrency, cfg.memory_timeout, probe.tick, max_requests=sent
    )
    return {"requests": sent, "errors": result.errors, "seconds": result.elapsed}


def _memory(probe: RssProbe, names: Sequence[str], top_up: JsonDict | None) -> JsonDict:
    first, last = probe.at(probe.step), probe.at(probe.last)
    growth: JsonDict = {}
    if first is not None and last is not None:
        growth = {n: 100.0 * (last[n] - first[n]) / first[n] for n in names if first.get(n)}
    return {
        "counted_requests": probe.count,
        "marks": [probe.step, probe.last],
        "rss_kb_first": {n: first[n] for n in names} if first else {},
        "rss_kb_last": {n: last[n] for n in names} if last else {},
        "growth_pct": growth,
        "samples": probe.samples,
        "top_up": top_up,
    }


def _stream_json(result: measure.Streams, cores: dict[str, float]) -> JsonDict:
    late, gaps, first = result.lateness_ms(), result.gaps_ms(), result.first_token_ms()
    return {
        "streams": len(result.traces),
        "finished": result.finished,
        "errors": result.errors,
        "error_kinds": result.error_kinds,
        "chunks": result.chunks,
        "chunks_per_s": result.chunks_per_second,
        "lateness_p50_ms": measure.percentile(late, 0.50),
        "lateness_p99_ms": measure.percentile(late, 0.99),
        "first_token_p50_ms": measure.percentile(first, 0.50),
        "first_token_p99_ms": measure.percentile(first, 0.99),
        "gap_p50_ms": measure.percentile(gaps, 0.50),
        "gap_p99_ms": measure.percentile(gaps, 0.99),
        "cpu_cores": cores,
        "cpu_us_per_chunk": _per_unit(cores, result.chunks_per_second, 1e6),
    }


async def _streams(
    cfg: Config,
    targets: Sequence[Target],
    stack: Stack,
    label: str,
    delay: float,
    secs: float,
    streams: int,
) -> JsonDict:
    """Paced streams (``delay`` > 0, starts staggered) or streams as fast as the emulator
    writes them; streams still open ``cfg.drain`` s after a round are cut."""
    rounds: list[JsonDict] = []
    meter = procs.CpuMeter(_cpu_pids(stack, label))
    for _ in range(cfg.rounds):
        row: JsonDict = {}
        for target in targets:
            await asyncio.sleep(SETTLE)
            meter.start()
            stagger = _stagger(cfg, streams) if delay > 0 else 0.0
            result = await measure.stream_load(
                target.stream, streams, secs, delay, cfg.drain, stagger
            )
            row[target.name] = _stream_json(result, meter.stop())
        rounds.append(row)
    names = [t.name for t in targets]
    keys = (
        "chunks_per_s",
        "lateness_p50_ms",
        "lateness_p99_ms",
        "first_token_p50_ms",
        "first_token_p99_ms",
        "gap_p50_ms",
        "gap_p99_ms",
    )
    out: JsonDict = {
        "streams": streams,
        "token_delay_s": delay,
        "duration_s": secs,
        "rounds": rounds,
        "median": {n: {k: _median_of(rounds, n, k) for k in keys} for n in names},
        "errors": {n: sum(r[n]["errors"] for r in rounds) for n in names},
        "ratio_to_direct": {
            n: measure.median(
                [
                    r[n]["chunks_per_s"] / r["direct"]["chunks_per_s"]
                    for r in rounds
                    if r["direct"]["chunks_per_s"]
                ]
            )
            for n in names
            if n != "direct"
        },
    }
    if delay > 0:
        out["added"] = {
            n: {
                "p50_ms": _added(rounds, n, "lateness_p50_ms"),
                "p99_ms": _added(rounds, n, "lateness_p99_ms"),
                "first_token_p50_ms": _added(rounds, n, "first_token_p50_ms"),
                "first_token_p99_ms": _added(rounds, n, "first_token_p99_ms"),
            }
            for n in names
            if n != "direct"
        }
    return out


async def _profile(cfg: Config, clients: Clients, fast: Stack) -> JsonDict:
    """Extra rounds (not measured) with py-spy sampling each service process: chats at
    the throughput concurrency, then streams as fast as they come (no token delay)."""
    py_spy = cfg.py_spy or profile.find_py_spy()
    if py_spy is None or cfg.profile is None:
        return {"error": "py-spy not found: pip install py-spy, or give --py-spy PATH"}
    cfg.profile.mkdir(parents=True, exist_ok=True)
    out: JsonDict = {}
    for target in clients.fast:
        if target.name == "direct":
            continue
        for kind in ("chat", "stream"):
            recorders = []
            for proc in fast.service.procs:
                path = cfg.profile / f"{target.name}-{kind}-{proc.name}.txt"
                recorder = profile.start_recording(
                    py_spy, proc.pid, cfg.duration, path, native=cfg.profile_native
                )
                recorders.append((proc, path, recorder))
            await asyncio.sleep(0.3)  # py-spy attaches
            seconds = cfg.duration + 0.5
            if kind == "chat":
                await measure.closed_loop(target.chat, cfg.concurrency, seconds)
            else:
                await measure.stream_load(target.stream, cfg.concurrency, seconds, 0.0, cfg.drain)
            for proc, path, recorder in recorders:
                key = f"{target.name} {kind} / {proc.name}"
                _, err = await asyncio.to_thread(recorder.communicate)
                if recorder.returncode != 0 or not path.exists():
                    out[key] = {"error": err.decode(errors="replace")[-500:]}
                    continue
                out[key] = {"file": str(path), **profile.read_collapsed(path.read_text()).to_json()}
            await asyncio.sleep(SETTLE)
    return out


def _targets(results: JsonDict) -> list[JsonDict]:
    """The issue's targets, each with the measured value and whether it is met."""
    checks: list[JsonDict] = []

    def check(name: str, value: float | None, limit: float, higher_is_better: bool) -> None:
        met = value is not None and (value >= limit if higher_is_better else value < limit)
        checks.append({"target": name, "value": value, "limit": limit, "met": met})

    lat = results.get("latency")
    http_faces = (("REST", "rest"), ("Ollama face", "ollama"))
    if lat:
        check("gRPC added p50 latency (ms) < 0.5", lat["added"]["grpc"]["p50_ms"], 0.5, False)
        for label, path in http_faces:
            added = lat["added"].get(path, {}).get("p50_ms")
            check(f"{label} added p50 latency (ms) < 1.0", added, 1.0, False)
    tp = results.get("throughput")
    if tp:
        for label, path in http_faces:
            check(
                f"{label} throughput / direct >= 0.30", tp["ratio_to_direct"].get(path), 0.30, True
            )
            check(f"{label} throughput errors == 0", tp["errors"].get(path), 1, False)
    st = results.get("streams")
    if st:
        for path in ("grpc", "rest", "ollama"):
            added = st["added"][path]["p99_ms"]
            check(f"{path} added per-token delay p99 (ms) < 5", added, 5.0, False)
    sk = results.get("soak")
    if sk:
        check("soak: generations running at the end", sk["running_at_end"], 1, False)
        check("soak: generations queued at the end", sk["queued_at_end"], 1, False)
        unbalanced = sk["counted"] - sk["successes"] - sk["failures"] - sk["cancellations"]
        check("soak: total - (successes + failures + cancellations)", abs(unbalanced), 1, False)
    mem = results.get("memory")
    if mem and mem.get("growth_pct"):
        for name, growth in mem["growth_pct"].items():
            check(f"{name} RSS growth (%) < 10", growth, 10.0, False)
    lg = results.get("ledger")
    if lg:
        for store in lg["stores"]:
            if store == "off":
                continue
            label = f"REST, ledger in {store}"
            check(
                f"{label}: added p50 latency (ms) < 1.0", lg["added"][store]["p50_ms"], 1.0, False
            )
            check(f"{label}: throughput / direct >= 0.30", lg["ratio_to_direct"][store], 0.30, True)
            check(f"{label}: errors == 0", lg["errors"][store], 1, False)
    real = results.get("realmodel")
    if real:
        spread = real["direct_spread_p10_p90"]
        for path, added in real["added"].items():
            label = report.REAL_HEADINGS[path]
            for key, what in (("ttft_ms", "first token (ms)"), ("tokens_per_s", "tokens/s")):
                check(
                    f"real model, {label}: |added| {what} < direct's p10-p90 spread",
                    abs(added[key]),
                    spread[key],
                    False,
                )
            check(f"real model, {label}: failed streams == 0", real["errors"][path], 1, False)
        check(
            "real model: the same answer on every path",
            1.0 if real["same_answer_everywhere"] else 0.0,
            1.0,
            True,
        )
    return checks


async def _measure(cfg: Config, fast: Stack, paced: Stack | None, log_dir: Path) -> JsonDict:
    results: JsonDict = {}
    conns = max(cfg.concurrency, cfg.streams)
    short, rate_text = words(cfg.message_words), words(cfg.rate_words)
    clients = Clients(
        fast=[
            DirectTarget(fast.emulator.url, conns, short, rate_text),
            GrpcTarget(fast.service.grpc_target, cfg.grpc_channels, short, rate_text),
            RestTarget(fast.service.rest_url, conns, short, rate_text),
            OllamaFaceTarget(fast.service.rest_url, conns, short, rate_text),
        ]
    )
    if paced is not None:
        text = words(cfg.stream_words)
        clients.paced = [
            DirectTarget(paced.emulator.url, cfg.streams, short, text),
            GrpcTarget(paced.service.grpc_target, cfg.grpc_channels, short, text),
            RestTarget(paced.service.rest_url, cfg.streams, short, text),
            OllamaFaceTarget(paced.service.rest_url, cfg.streams, short, text),
        ]
    service_procs = {p.name: p for p in fast.service.procs}
    step, last = cfg.rss_marks
    probe = RssProbe(service_procs, step, last) if "memory" in cfg.phases else None
    try:
        await _warm_up(cfg, clients)
        if "latency" in cfg.phases:
            results["latency"] = await _latency(cfg, clients, probe)
        if "throughput" in cfg.phases:
            results["throughput"] = await _throughput(cfg, clients, fast, probe)
        if probe is not None:
            top_up = await _memory_top_up(cfg, clients, probe) if probe.remaining else None
            results["memory"] = _memory(probe, list(service_procs), top_up)
        if paced is not None:
            results["streams"] = await _streams(
                cfg,
                clients.paced,
                paced,
                "paced",
                cfg.token_delay,
                cfg.stream_duration,
                cfg.streams,
            )
        if "rate" in cfg.phases:
            results["rate"] = await _streams(
                cfg, clients.fast, fast, "fast", 0.0, cfg.rate_duration, cfg.concurrency
            )
        if "soak" in cfg.phases:
            results["soak"] = await soak.soak(
                fast.service.grpc_target,
                fast.service.rest_url,
                cfg.soak_duration,
                cfg.soak_clients,
            )
        if "ledger" in cfg.phases:
            results["ledger"] = await ledger.measure_ledger(cfg, fast.emulator.url, log_dir)
        if cfg.profile is not None:
            results["profile"] = await _profile(cfg, clients, fast)
    finally:
        await clients.aclose()
    return results


def run(cfg: Config) -> JsonDict:
    """Starts the processes, measures every selected phase, stops the processes, and
    returns the results (machine, settings, per-round and median values, targets)."""
    started = time.perf_counter()
    header: JsonDict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": list(os.getloadavg()),
        },
        "config": {
            "mode": cfg.mode,
            "quick": cfg.quick,
            "rounds": cfg.rounds,
            "latency_requests": cfg.latency_requests,
            "concurrency": cfg.concurrency,
            "duration_s": cfg.duration,
            "streams": cfg.streams,
            "token_delay_s": cfg.token_delay,
            "stream_duration_s": cfg.stream_duration,
            "rate_duration_s": cfg.rate_duration,
            "soak_duration_s": cfg.soak_duration,
            "soak_clients": cfg.soak_clients,
            "grpc_channels": cfg.grpc_channels,
            "service_env": {
                "LLM_MAX_CONCURRENT": cfg.max_concurrent,
                "LLM_MAX_QUEUE": cfg.max_concurrent,
                **dict(cfg.server_env),
            },
            "server_python": cfg.server_python,
            "server_dir": str(cfg.server_dir),
            "server_git": _git_state(cfg.server_dir),
            "client": "httpx.AsyncClient (direct, REST), grpc.aio (gRPC), in the bench process",
            "phases": list(cfg.phases),
            "realmodel_streams_per_round": cfg.realmodel_streams,
            "realmodel_max_tokens": cfg.realmodel_tokens,
        },
    }
    results: JsonDict = {}
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as tmp:
        log_dir = Path(tmp)
        if any(phase != "realmodel" for phase in cfg.phases):
            with _stacks(cfg, log_dir) as (fast, paced):
                results = asyncio.run(_measure(cfg, fast, paced, log_dir))
                peaks: JsonDict = {"client": procs.proc_status_kb(os.getpid(), "VmHWM")}
                all_procs = fast.procs("fast") | (paced.procs("paced") if paced else {})
                peaks.update({name: p.peak_rss_kb() for name, p in all_procs.items()})
                dead = [name for name, p in all_procs.items() if not p.alive()]
                results.setdefault("memory", {})["peak_rss_kb"] = peaks
                if dead:
                    results["dead_processes"] = {n: all_procs[n].log_tail() for n in dead}
        # after the emulators' stacks have stopped, so that nothing else runs meanwhile
        if "realmodel" in cfg.phases:
            results["realmodel"] = realmodel.run_phase(cfg, log_dir)
    header["machine"]["loadavg_at_end"] = list(os.getloadavg())
    header.update(results)
    header["targets"] = _targets(header)
    header["elapsed_s"] = round(time.perf_counter() - started, 1)
    return header


def _git_state(repo: Path) -> JsonDict:
    """The commit the service runs from, and whether its code differs from it (read only)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    status = git("status", "--porcelain", "--", "server", "rest_shim", "generated")
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "modified": bool(status)}


def default_output() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return REPO / "bench" / "results" / f"bench-{stamp}.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the bench, prints the table, writes the JSON; 0 once the run completed
    (whether or not the targets are met: see ``targets`` in the JSON)."""
    cfg = parse(argv)
    print(
        f"bench: {cfg.mode}; {os.cpu_count()} cores; phases {', '.join(cfg.phases)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        results = run(cfg)
    except RuntimeError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    output = cfg.output or default_output()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report.finite(results), indent=2) + "\n")
    print(report.table(results))
    print(f"\nresults: {output}")
    return 0
