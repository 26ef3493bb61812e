"""The ledger phase: what the usage ledger costs on the hot path.

Three more services start in front of the fast emulator, alike but for the ledger: off
(``LLM_LEDGER=false``), SQLite (the default, a file in a temporary directory) and
PostgreSQL (a throwaway server started here, as the tests start theirs; skipped when
PostgreSQL's binaries are not installed). Each is measured over REST, in interleaved
rounds with the emulator itself (direct): serial latency, then closed-loop throughput.
The ledger's targets are REST's: added p50 latency under 1 ms, throughput at least
0.30 of direct, no errors. ``added_to_off`` is what the ledger itself adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import measure, procs
from bench.config import REPO, Config
from bench.targets import DirectTarget, RestTarget, Target, words

JsonDict = dict[str, Any]
SETTLE = 0.3


@contextlib.contextmanager
def _postgres() -> Iterator[str | None]:
    """A database URL on a throwaway PostgreSQL server, or None without its binaries."""
    sys.path.insert(0, str(REPO))
    from tests import postgres  # the tests' launcher: initdb in a temporary directory

    try:
        server = postgres.start()
    except RuntimeError as exc:
        print(f"bench: ledger on PostgreSQL skipped: {exc}", file=sys.stderr, flush=True)
        yield None
        return
    try:
        yield server.database()
    finally:
        postgres.stop(server)


@contextlib.contextmanager
def services(cfg: Config, emulator_url: str, log_dir: Path) -> Iterator[dict[str, procs.Service]]:
    base = {"LLM_MAX_CONCURRENT": str(cfg.max_concurrent), "LLM_MAX_QUEUE": str(cfg.max_concurrent)}
    base.update(dict(cfg.server_env))
    started: list[procs.Service] = []
    with _postgres() as database_url:
        envs = {
            "off": {"LLM_LEDGER": "false"},
            "sqlite": {"LLM_LEDGER": "true", "LLM_DATA_DIR": str(log_dir / "ledger-sqlite")},
        }
        if database_url is not None:
            envs["postgresql"] = {"LLM_LEDGER": "true", "LLM_DATABASE_URL": database_url}
        try:
            for store, env in envs.items():
                started.append(
                    procs.start_service(
                        f"service-ledger-{store}",
                        python=cfg.server_python,
                        repo=cfg.server_dir,
                        ollama_url=emulator_url,
                        split=cfg.split,
                        extra_env={**base, **env},
                        log_dir=log_dir,
                    )
                )
            yield dict(zip(envs, started, strict=True))
        finally:
            for service in reversed(started):
                service.stop()


async def measure_ledger(cfg: Config, emulator_url: str, log_dir: Path) -> JsonDict:
    short, rate_text = words(cfg.message_words), words(cfg.rate_words)
    conns = cfg.concurrency
    with services(cfg, emulator_url, log_dir) as running:
        targets: list[Target] = [DirectTarget(emulator_url, conns, short, rate_text)]
        for store, service in running.items():
            rest = RestTarget(service.rest_url, conns, short, rate_text)
            rest.name = store
            targets.append(rest)
        try:
            for warming in targets:  # warm-up: connections open, code paths hot
                await measure.closed_loop(warming.chat, cfg.concurrency, cfg.warmup)
            rounds: list[JsonDict] = []
            for _ in range(cfg.rounds):
                row: JsonDict = {}
                for target in targets:
                    latency = await measure.serial_latency(target.chat, cfg.latency_requests)
                    await asyncio.sleep(SETTLE)
                    load = await measure.closed_loop(target.chat, cfg.concurrency, cfg.duration)
                    row[target.name] = {
                        "p50_ms": latency.p50,
                        "p99_ms": latency.p99,
                        "rps": load.rps,
                        "errors": latency.errors + load.errors,
                    }
                rounds.append(row)
        finally:
            for done in targets:
                await done.aclose()
    names = [t.name for t in targets if t.name != "direct"]
    stores = [n for n in names if n != "off"]

    def paired(name: str, key: str, against: str) -> float:
        return measure.median([r[name][key] - r[against][key] for r in rounds])

    def ratio(name: str, against: str) -> float:
        return measure.median(
            [r[name]["rps"] / r[against]["rps"] for r in rounds if r[against]["rps"]]
        )

    return {
        "requests_per_round": cfg.latency_requests,
        "concurrency": cfg.concurrency,
        "rounds": rounds,
        "stores": names,
        "added": {n: {k: paired(n, k, "direct") for k in ("p50_ms", "p99_ms")} for n in names},
        "added_to_off": {n: {k: paired(n, k, "off") for k in ("p50_ms", "p99_ms")} for n in stores},
        "ratio_to_direct": {n: ratio(n, "direct") for n in names},
        "ratio_to_off": {n: ratio(n, "off") for n in stores},
        "errors": {n: sum(r[n]["errors"] for r in rounds) for n in names},
    }
