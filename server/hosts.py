"""Several Ollama hosts behind one interface, with failover that never replays output.

A request goes to an up host with the fewest requests in flight. A host that refuses
the connection or does not accept it in time is marked down and the request moves on to
the next host: nothing was sent, so nothing can be generated twice. A busy 503 moves on
too (Ollama generated nothing). Once a stream has started, its host is final.

A down host is skipped until its cool-down has passed and a health check succeeds
(``mark_checked``). When every host is down, the request is still tried on them in
turn, so a recovered host is used at once and a dead one fails fast.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from server.config import without_credentials
from server.errors import LlmError, OllamaBusy, OllamaConnectFailed, OllamaUnavailable
from server.history import upstream_host
from server.ollama_client import JsonObject, OllamaClient

T = TypeVar("T")


@dataclass
class Host:
    url: str
    client: OllamaClient
    up: bool = True
    down_since: float = 0.0
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    last_error: str = ""


class OllamaPool:
    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        timeout: float,
        connect_timeout: float,
        cooldown: float,
        max_line_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        # A host is shown (Health, Stats, errors, logs, metrics) without the user and
        # password its URL may carry; its client still sends them.
        self.hosts = [
            Host(
                without_credentials(u),
                OllamaClient(
                    u,
                    timeout=timeout,
                    connect_timeout=connect_timeout,
                    max_line_bytes=max_line_bytes,
                ),
            )
            for u in urls
        ]
        self._cooldown = cooldown
        self.retries = 0

    async def aclose(self) -> None:
        for host in self.hosts:
            await host.client.aclose()

    def candidates(self) -> list[Host]:
        up = sorted((h for h in self.hosts if h.up), key=lambda h: h.in_flight)
        down = sorted((h for h in self.hosts if not h.up), key=lambda h: h.down_since)
        return up + down

    def mark_down(self, host: Host, error: str) -> None:
        if host.up:
            host.up = False
            host.down_since = time.monotonic()
        host.last_error = error

    def mark_checked(self, host: Host, healthy: bool, error: str = "") -> None:
        """A health check's verdict: a down host returns after its cool-down."""
        if not healthy:
            self.mark_down(host, error)
        elif not host.up and time.monotonic() - host.down_since >= self._cooldown:
            host.up = True
            host.last_error = ""

    async def call(self, work: Callable[[OllamaClient], Awaitable[T]]) -> T:
        """Runs ``work`` on the best host, moving on while nothing was generated."""
        host, result = await self._start(work)
        host.in_flight -= 1
        return result

    @asynccontextmanager
    async def stream(
        self, path: str, payload: JsonObject, timeout: float
    ) -> AsyncIterator[AsyncGenerator[JsonObject]]:
        """Opens a streamed chat or generation on the best host (failing over only
        before the first byte) and yields its chunks; leaving the block closes the
        upstream request."""
        host, response = await self._start(lambda c: c.open_stream(path, payload, timeout))
        chunks = host.client.chunks(response, str(payload.get("model", "")), timeout)
        try:
            yield chunks
        except LlmError as exc:
            self._failed(host, exc)
            raise
        finally:
            await chunks.aclose()
            await response.aclose()
            host.in_flight -= 1

    async def _start(self, work: Callable[[OllamaClient], Awaitable[T]]) -> tuple[Host, T]:
        """The failover loop: the first host whose ``work`` succeeds, and its result.
        That host's ``in_flight`` stays counted; the caller ends it."""
        errors: list[LlmError] = []
        for i, host in enumerate(self.candidates()):
            if i:
                self.retries += 1
            host.in_flight += 1
            host.requests += 1
            upstream_host.set(host.url)
            try:
                result = await work(host.client)
            except BaseException as exc:
                host.in_flight -= 1
                if isinstance(exc, LlmError):
                    self._failed(host, exc)
                if isinstance(exc, (OllamaConnectFailed, OllamaBusy)):
                    errors.append(exc)
                    continue
                raise
            host.up = True
            return host, result
        raise _all_failed(errors)

    def _failed(self, host: Host, exc: LlmError) -> None:
        host.failures += 1
        host.last_error = exc.message
        if isinstance(exc, OllamaConnectFailed):
            self.mark_down(host, exc.message)


def _all_failed(errors: list[LlmError]) -> LlmError:
    if len(errors) == 1:
        return errors[0]
    if errors and all(isinstance(e, OllamaBusy) for e in errors):
        return OllamaBusy("every Ollama host is busy: " + "; ".join(e.message for e in errors))
    return OllamaUnavailable(
        "no Ollama host could take the request: " + "; ".join(e.message for e in errors)
    )
