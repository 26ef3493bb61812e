"""Several Ollama hosts behind one interface, with failover that never replays output.

A request for a model goes only to hosts that have it (their inventory: /api/tags and
/api/ps, refreshed by every health check, and a host that answers for a model counts
as having it loaded); among them first to one where it is loaded (no cold load of tens
of seconds), then to the one with the fewest requests in flight. A model that no
host lists is NOT_FOUND at once, naming the hosts; one only on down hosts is tried on
them and ends UNAVAILABLE. A host whose inventory is not known yet may take any model.
A host that refuses
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
from dataclasses import dataclass, field
from typing import TypeVar

from server import upstreams
from server.calls import current_call
from server.config import Settings, without_credentials
from server.errors import (
    LlmError,
    ModelNotFound,
    OllamaBusy,
    OllamaConnectFailed,
    OllamaUnavailable,
)
from server.names import canonical
from server.ollama_client import JsonObject, OllamaClient

T = TypeVar("T")


@dataclass
class Host:
    url: str
    client: OllamaClient
    upstream: str = "ollama"
    up: bool = True
    down_since: float = 0.0
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    last_error: str = ""
    # Down because it answers that it is not ready yet (a server loading its model).
    not_ready: bool = False
    # What the host holds, by canonical name ("llama3.2:latest"); None: not known yet.
    models: frozenset[str] | None = None
    # The same, as the host lists them.
    listed: tuple[str, ...] = ()
    # Models loaded in memory: canonical name -> Ollama's /api/ps entry.
    loaded: dict[str, JsonObject] = field(default_factory=dict)

    # Both take a model's canonical name (``names.canonical``), worked out once per request.
    def holds(self, name: str) -> bool:
        return self.models is None or name in self.models

    def mark_loaded(self, name: str) -> None:
        """It answered with model ``name``: loaded, until the next check says otherwise."""
        self.loaded.setdefault(name, {"name": name})


class OllamaPool:
    """Every host of every upstream (LLM_UPSTREAMS, or OLLAMA_BASE_URL's Ollama hosts)."""

    def __init__(self, hosts: list[Host], *, cooldown: float) -> None:
        self.hosts = hosts
        self._cooldown = cooldown
        self.retries = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaPool:
        # A host is shown (Health, Stats, errors, logs, metrics) without the user and
        # password its URL may carry; its client still sends them.
        hosts = [
            Host(without_credentials(url), upstreams.client(upstream, url, settings), upstream.name)
            for upstream in settings.upstreams
            for url in upstream.urls
        ]
        return cls(hosts, cooldown=settings.host_cooldown)

    async def aclose(self) -> None:
        for host in self.hosts:
            await host.client.aclose()

    def candidates(self, model: str | None = None) -> list[Host]:
        """The hosts to try for ``model``, best first (see the module docstring)."""
        hosts = self.hosts
        name = canonical(model) if model else ""
        if name:
            hosts = [h for h in self.hosts if h.holds(name)]
            if not hosts:
                asked = ", ".join(h.url for h in self.hosts)
                raise ModelNotFound(f"model '{model}' is on none of the Ollama hosts ({asked})")
        up = sorted(
            (h for h in hosts if h.up),
            key=lambda h: (not (name and name in h.loaded), h.in_flight),
        )
        down = sorted((h for h in hosts if not h.up), key=lambda h: h.down_since)
        return up + down

    def inventory(self, host: Host, models: list[str], loaded: list[JsonObject]) -> None:
        """A health check's view of what ``host`` holds and has loaded."""
        host.models = frozenset(canonical(m) for m in models)
        host.listed = tuple(sorted(models))
        host.loaded = {canonical(str(m.get("name") or m.get("model") or "")): m for m in loaded}

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

    async def call(
        self,
        work: Callable[[OllamaClient], Awaitable[T]],
        model: str | None = None,
        *,
        loads: bool = False,
    ) -> T:
        """Runs ``work`` on the best host for ``model``, moving on while nothing was
        generated; ``loads``: the work loads the model there (a generation)."""
        host, result = await self._start(work, model, loads)
        host.in_flight -= 1
        return result

    @asynccontextmanager
    async def stream(
        self, path: str, payload: JsonObject, timeout: float
    ) -> AsyncIterator[AsyncGenerator[JsonObject]]:
        """Opens a streamed chat or generation on the best host (failing over only
        before the first byte) and yields its chunks; leaving the block closes the
        upstream request."""
        model = str(payload.get("model") or "")
        host, response = await self._start(
            lambda c: c.open_stream(path, payload, timeout), model, loads=True
        )
        chunks = host.client.chunks(response, model, timeout)
        try:
            yield chunks
        except LlmError as exc:
            self._failed(host, exc)
            raise
        finally:
            await chunks.aclose()
            await response.aclose()
            host.in_flight -= 1

    async def _start(
        self,
        work: Callable[[OllamaClient], Awaitable[T]],
        model: str | None = None,
        loads: bool = False,
    ) -> tuple[Host, T]:
        """The failover loop: the first host whose ``work`` succeeds, and its result.
        That host's ``in_flight`` stays counted; the caller ends it."""
        errors: list[LlmError] = []
        call = current_call.get()
        for i, host in enumerate(self.candidates(model)):
            if i:
                self.retries += 1
            if call is not None:
                call.host = host.url  # the host the request went to last
            host.in_flight += 1
            host.requests += 1
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
            if loads and model:
                host.mark_loaded(canonical(model))
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
