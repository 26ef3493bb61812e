"""The bench's settings: command-line flags, with ``--quick`` as a short smoke run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHASES = ("latency", "throughput", "streams", "rate", "memory", "soak", "ledger", "realmodel")
STREAM_SECONDS = 2.0


@dataclass(frozen=True)
class Config:
    rounds: int
    latency_requests: int
    concurrency: int
    duration: float
    streams: int
    token_delay: float
    stream_duration: float
    stream_words: int
    rate_words: int
    rate_duration: float
    soak_duration: float
    soak_clients: int
    warmup: float
    drain: float
    """Seconds paced streams get to finish after a round before they are cut."""
    rss_marks: tuple[int, int]
    """Requests the service has served (after warm-up) at the first and the last RSS
    reading; readings are taken every ``rss_marks[0]`` requests in between."""
    memory_timeout: float
    grpc_channels: int
    split: bool
    max_concurrent: int
    message_words: int
    phases: tuple[str, ...]
    server_python: str
    server_dir: Path
    server_env: tuple[tuple[str, str], ...]
    realmodel_streams: int
    """Streams per path in each round of the real-model phase."""
    realmodel_tokens: int
    output: Path | None
    profile: Path | None
    py_spy: str | None
    profile_native: bool
    quick: bool

    @property
    def mode(self) -> str:
        if self.split:
            return "two processes: python -m server + python -m rest_shim"
        return "one process: python -m server --with-rest (as the Dockerfile runs it)"


def _env_pair(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {raw!r}")
    return key, value


def realmodel_cached() -> bool:
    """Whether llama-server and SmolLM2 are built and cached (tests/realmodel.py): the
    real-model phase runs by default only then (a first build takes about 17 minutes)."""
    from tests.realmodel import cached

    return cached()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="What the service costs on top of Ollama: the same chat sent straight to "
        "an Ollama emulator, through the gRPC server and through the REST shim, side by side; "
        "then (realmodel) the same stream straight to llama.cpp's llama-server with SmolLM2 "
        "and through every face of the service in front of it.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of under a minute (one round, short phases)",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds per measurement (3)")
    p.add_argument("--latency-requests", type=int, help="serial requests per round (200)")
    p.add_argument("--concurrency", type=int, default=64, help="throughput workers (64)")
    p.add_argument("--duration", type=float, help="seconds per throughput round (10)")
    p.add_argument("--streams", type=int, default=200, help="concurrent streams (200)")
    p.add_argument(
        "--token-delay",
        type=float,
        default=0.1,
        help="seconds between tokens of the paced emulator (0.1: with 200 streams, 2,000 "
        "tokens/s in all; at 0.02 the emulator and client alone cannot keep up on 2 cores)",
    )
    p.add_argument("--stream-duration", type=float, help="seconds per paced-stream round (3)")
    p.add_argument("--rate-duration", type=float, help="seconds per max-rate round (1.5)")
    p.add_argument(
        "--soak-duration",
        type=float,
        help="seconds of clients leaving at random moments, then the counters (120)",
    )
    p.add_argument("--soak-clients", type=int, default=32, help="concurrent soak clients (32)")
    p.add_argument(
        "--rss-requests",
        type=int,
        help="service requests after which RSS is compared with RSS after the first 1,000 (20,000)",
    )
    p.add_argument("--grpc-channels", type=int, default=1, help="gRPC client channels (1)")
    p.add_argument(
        "--split",
        action="store_true",
        help="run the REST shim as its own process (python -m rest_shim)",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=256,
        help="LLM_MAX_CONCURRENT and LLM_MAX_QUEUE of the service (256), so its "
        "generation limiter never refuses the bench's load",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=PHASES,
        help="run only these phases (repeatable); default all, realmodel only when "
        "llama-server is cached (scripts/llama_server.sh; --only realmodel builds it)",
    )
    p.add_argument(
        "--realmodel-streams",
        type=int,
        help="real-model phase: streams per path and round, one at a time (5)",
    )
    p.add_argument(
        "--realmodel-tokens",
        type=int,
        default=64,
        help="real-model phase: max_tokens of every stream (64; the prompt asks for more)",
    )
    p.add_argument(
        "--server-python",
        default=sys.executable,
        help="interpreter for the service processes (default: this one)",
    )
    p.add_argument(
        "--server-dir",
        type=Path,
        default=REPO,
        help="repository whose server/ and rest_shim/ run (default: this one)",
    )
    p.add_argument(
        "--server-env",
        action="append",
        type=_env_pair,
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service",
    )
    p.add_argument(
        "--output", type=Path, help="JSON results file (default: bench/results/bench-<time>.json)"
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also profile the server with py-spy in extra, unmeasured "
        "throughput rounds; collapsed stacks go to DIR",
    )
    p.add_argument(
        "--profile-native",
        action="store_true",
        help="py-spy --native: show time in C extensions (grpc) too; pauses the process",
    )
    p.add_argument(
        "--py-spy", metavar="PATH", help="py-spy binary (default: next to python, or on PATH)"
    )
    return p


def parse(argv: Sequence[str] | None) -> Config:
    a = parser().parse_args(argv)
    quick = bool(a.quick)

    def pick(value: float | int | None, full: float | int, short: float | int) -> float:
        return float(value) if value is not None else float(short if quick else full)

    rounds = int(pick(a.rounds, 3, 1))
    realmodel_streams = int(pick(a.realmodel_streams, 5, 2))
    counts = (rounds, a.concurrency, a.streams, a.grpc_channels, realmodel_streams)
    if min(counts) < 1 or a.realmodel_tokens < 2:
        raise SystemExit("python -m bench: counts must be at least 1 (--realmodel-tokens 2)")
    if a.only:
        phases = tuple(a.only)
    else:
        phases = tuple(p for p in PHASES if p != "realmodel" or realmodel_cached())
    return Config(
        rounds=rounds,
        latency_requests=int(pick(a.latency_requests, 200, 100)),
        concurrency=a.concurrency,
        duration=pick(a.duration, 10.0, 2.0),
        streams=a.streams,
        token_delay=a.token_delay,
        stream_duration=pick(a.stream_duration, 3.0, 1.5),
        # Paced streams last about STREAM_SECONDS: one token per word, plus "Echo:".
        stream_words=max(4, round(STREAM_SECONDS / a.token_delay) - 1) if a.token_delay > 0 else 50,
        rate_words=50,
        rate_duration=pick(a.rate_duration, 1.5, 1.0),
        soak_duration=pick(a.soak_duration, 120.0, 5.0),
        soak_clients=a.soak_clients,
        warmup=0.5 if quick else 1.0,
        drain=1.0 if quick else 3.0,
        rss_marks=(200 if quick else 1_000, int(pick(a.rss_requests, 20_000, 1_000))),
        memory_timeout=15.0 if quick else 120.0,
        grpc_channels=a.grpc_channels,
        split=bool(a.split),
        max_concurrent=a.max_concurrent,
        message_words=8,
        phases=phases,
        server_python=a.server_python,
        server_dir=a.server_dir.resolve(),
        server_env=tuple(a.server_env),
        realmodel_streams=realmodel_streams,
        realmodel_tokens=a.realmodel_tokens,
        output=a.output,
        profile=a.profile,
        py_spy=a.py_spy,
        profile_native=bool(a.profile_native),
        quick=quick,
    )
