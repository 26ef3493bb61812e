"""Everything the emulator remembers, shared between the test thread and the server thread.

``EmulatorState`` guards its counters with one ``threading.Condition`` so tests can
block on them (``wait_until``) without polling; the server side only ever holds the
lock briefly and never awaits while holding it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ollama_emulator.models import ModelCatalog, ModelSpec, default_models

RECORD_LIMIT = 10_000
"""Recorded requests kept (the most recent): a long run must not grow without bound."""

DEFAULT_KEEP_ALIVE = 300.0
"""Seconds a model stays loaded after a request when ``keep_alive`` is not given (5m)."""

ConnectionCloser = Callable[[tuple[str, int]], bool]
"""Closes the server's connection to the given client address; called on the server loop."""


@dataclass
class Faults:
    """Fault settings, read afresh by every inference request (generate, chat, embed).

    ``times`` counts how many more requests the *failures and stalls* apply to:
    ``load_delay``, ``busy``, ``error_status``, ``error_after_chunks`` and
    ``cut_after_chunks``. Each request they apply to decrements it; at 0 they stop
    applying (the settings themselves stay, so a test can read them back).
    ``token_delay`` is pacing, not a failure: it always applies; so does
    ``answer_tokens``, which makes every chat and generate answer that many tokens
    long (the echo repeated), streamed as fast as ``token_delay`` allows; so does
    ``cold_load_delay``, the time a model that is not loaded takes to load (a loaded
    model answers at once; requests arriving during a load wait for that same load,
    as with Ollama's scheduler). ``load_delay``, by contrast, stalls every request it
    applies to, loaded model or not.
    ``tags_error_status`` makes /api/tags and /api/version fail; ``times`` does not
    count those. ``hang`` makes the emulator a host that accepts connections and
    never answers: every request, on any path, is read and left waiting until the
    client gives up.
    """

    token_delay: float = 0.0
    answer_tokens: int | None = None
    cold_load_delay: float = 0.0
    hang: bool = False
    load_delay: float = 0.0
    error_status: int | None = None
    error_message: str = "llama runner process has terminated: exit status 2"
    busy: bool = False
    error_after_chunks: int | None = None
    cut_after_chunks: int | None = None
    times: int | None = None
    tags_error_status: int | None = None

    def has_failures(self) -> bool:
        return (
            self.load_delay > 0
            or self.busy
            or self.error_status is not None
            or self.error_after_chunks is not None
            or self.cut_after_chunks is not None
        )

    def without_failures(self) -> Faults:
        """A copy with the failures and stalls off; pacing and the other settings kept."""
        return replace(
            self,
            load_delay=0.0,
            busy=False,
            error_status=None,
            error_after_chunks=None,
            cut_after_chunks=None,
        )


@dataclass
class _Loaded:
    """A loaded model: ``session`` seconds kept after its last request (inf: forever,
    0: unloaded when idle), ``expires_at`` (epoch) once idle, ``in_use`` requests."""

    model: ModelSpec
    session: float
    expires_at: float = 0.0
    in_use: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it, recorded before it was answered."""

    method: str
    path: str
    body: dict[str, Any] | None
    raw_body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class EmulatorState:
    """Models, faults, recorded requests, loaded models and response accounting."""

    def __init__(self, models: list[ModelSpec] | None = None, *, keep: int = RECORD_LIMIT) -> None:
        """``keep``: how many of the latest requests to remember (0: none, for a
        long-running emulator nobody inspects)."""
        self.catalog = ModelCatalog(default_models() if models is None else list(models))
        self.faults = Faults()
        self.connection_closer: ConnectionCloser | None = None
        self._cond = threading.Condition()
        self._requests: deque[RecordedRequest] = deque(maxlen=keep)
        self._disconnects = 0
        self._active = 0
        self._blocked = 0
        self._loaded: dict[str, _Loaded] = {}
        self._loading: dict[str, float] = {}  # model key -> monotonic time its load ends
        self._stopping = False

    # -- recorded requests -------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._requests)

    # -- response accounting -----------------------------------------------------

    @property
    def disconnects(self) -> int:
        with self._cond:
            return self._disconnects

    @property
    def active_responses(self) -> int:
        with self._cond:
            return self._active

    def response_started(self) -> None:
        with self._cond:
            self._active += 1
            self._cond.notify_all()

    def response_finished(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    @property
    def blocked_writes(self) -> int:
        """Streamed responses whose last write waits for the client to read."""
        with self._cond:
            return self._blocked

    def write_blocked(self, blocked: bool) -> None:
        with self._cond:
            self._blocked += 1 if blocked else -1
            self._cond.notify_all()

    def wait_for_blocked_writes(self, n: int, timeout: float) -> bool:
        return self.wait_until(lambda: self._blocked >= n, timeout)

    def client_disconnected(self) -> None:
        """Counts a response the client abandoned, unless the server itself is going down."""
        with self._cond:
            if not self._stopping:
                self._disconnects += 1
            self._cond.notify_all()

    def set_stopping(self, stopping: bool) -> None:
        with self._cond:
            self._stopping = stopping

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Blocks until ``predicate`` (called with the lock held) is true; False on timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout=timeout)

    def wait_for_disconnects(self, n: int, timeout: float) -> bool:
        return self.wait_until(lambda: self._disconnects >= n, timeout)

    def wait_for_requests(self, path: str, n: int, timeout: float) -> bool:
        return self.wait_until(lambda: sum(r.path == path for r in self._requests) >= n, timeout)

    def wait_for_active(self, n: int, timeout: float) -> bool:
        return self.wait_until(lambda: self._active >= n, timeout)

    def wait_for_idle(self, timeout: float) -> bool:
        return self.wait_until(lambda: self._active == 0, timeout)

    # -- faults --------------------------------------------------------------------

    def claim_faults(self) -> Faults:
        """A snapshot of the faults for one inference request, consuming one of ``times``."""
        with self._cond:
            faults = self.faults
            if not faults.has_failures() or faults.times is None:
                return replace(faults)
            if faults.times <= 0:
                return faults.without_failures()
            faults.times -= 1
            return replace(faults)

    def replace_faults(self, new: Faults) -> None:
        """Copies ``new`` into the live ``faults`` object, so references to it stay valid."""
        with self._cond:
            for f in fields(Faults):
                setattr(self.faults, f.name, getattr(new, f.name))

    # -- loaded models (/api/ps) ---------------------------------------------------

    def load_wait(self, model: ModelSpec, cold_delay: float) -> float:
        """Seconds a request must wait for ``model`` to be loaded.

        0 when it is loaded; the rest of a load already under way; otherwise a new
        load of ``cold_delay`` seconds starts. A load whose requests all left is
        abandoned, so the next request starts another.
        """
        now = time.monotonic()
        with self._cond:
            if self._live(model.key, time.time()):
                return 0.0
            loading_until = self._loading.get(model.key, 0.0)
            if loading_until > now:
                return loading_until - now
            if cold_delay <= 0:
                return 0.0
            self._loading[model.key] = now + cold_delay
            return cold_delay

    def acquire(self, model: ModelSpec, keep_alive: float | None) -> None:
        """A request starts using ``model`` (now loaded); ``keep_alive`` as requested."""
        session = DEFAULT_KEEP_ALIVE if keep_alive is None else keep_alive
        with self._cond:
            self._loading.pop(model.key, None)
            entry = self._loaded.get(model.key)
            if entry is None or not self._live(model.key, time.time()):
                entry = self._loaded[model.key] = _Loaded(model, session)
            entry.session = session
            entry.in_use += 1
            self._cond.notify_all()

    def release(self, model: ModelSpec) -> None:
        """A request is done with ``model``: it stays loaded for its session, or unloads."""
        with self._cond:
            entry = self._loaded.get(model.key)
            if entry is None or entry.in_use == 0:
                return  # unloaded meanwhile
            entry.in_use -= 1
            if entry.in_use == 0:
                if entry.session <= 0:
                    del self._loaded[model.key]
                else:
                    entry.expires_at = time.time() + entry.session
            self._cond.notify_all()

    def mark_loaded(self, model: ModelSpec, keep_alive: float | None) -> None:
        """Loads ``model`` as one finished request would leave it."""
        self.acquire(model, keep_alive)
        self.release(model)

    def unload(self, model: ModelSpec) -> None:
        with self._cond:
            self._loaded.pop(model.key, None)
            self._loading.pop(model.key, None)
            self._cond.notify_all()

    def _live(self, key: str, now: float) -> bool:
        entry = self._loaded.get(key)
        return entry is not None and (entry.in_use > 0 or entry.expires_at > now)

    def loaded_models(self) -> list[tuple[ModelSpec, float]]:
        """(model, expires_at epoch seconds), longest remaining first; expired ones dropped.

        A model in use expires its session after now (Ollama starts the countdown
        when the last request ends).
        """
        now = time.time()
        with self._cond:
            for key in [k for k in self._loaded if not self._live(k, now)]:
                del self._loaded[key]
            items = [
                (e.model, now + e.session if e.in_use else e.expires_at)
                for e in self._loaded.values()
            ]
        return sorted(items, key=lambda item: item[1], reverse=True)

    def forget_loaded(self) -> None:
        with self._cond:
            self._loaded.clear()
            self._loading.clear()

    # -- reset ---------------------------------------------------------------------

    def reset(self) -> None:
        """Clears faults, recorded requests, counters and loaded models."""
        self.replace_faults(Faults())
        with self._cond:
            self._requests.clear()
            self._disconnects = 0
            self._loaded.clear()
            self._loading.clear()
            self._cond.notify_all()
