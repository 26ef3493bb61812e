"""What the REST routes share: the settings and the stub (a channel's, or in process)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.requests import Request

from rest_shim.stub import LlmStub
from server.config import Settings
from server.logs import FACE_KEY, REQUEST_ID_HEADER

# Extra seconds past OLLAMA_TIMEOUT, so the server's own timeout (with its clearer
# message) fires before the shim's gRPC deadline does.
DEADLINE_MARGIN = 5.0
# Health, readiness and stats answer from caches and counters: never wait long.
PROBE_DEADLINE = 10.0


@dataclass
class Backend:
    settings: Settings
    stub: LlmStub

    @property
    def deadline(self) -> float:
        return self.settings.timeout + DEADLINE_MARGIN


def backend(request: Request) -> Backend:
    b: Backend = request.app.state.backend
    return b


def metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """gRPC metadata passed through from the HTTP request: the caller's credentials and
    the request id (so the server's log lines carry the same id). HTTP Basic credentials
    count as the key in their password (what LangChain and Open WebUI send for a URL
    with ``user:key@``), so they go on as a bearer key."""
    rid: str = request.scope.get("state", {}).get("request_id", "")
    # The scope's path, not request.url: building the URL (host header parsed, URL
    # split again) costs more than the rest of this function, on every RPC.
    pairs: tuple[tuple[str, str], ...] = ((FACE_KEY, face_of(request.scope["path"])),)
    if rid:
        pairs += ((REQUEST_ID_HEADER, rid),)
    auth = request.headers.get("authorization")
    if auth and auth[:6].lower() == "basic ":
        auth = _basic_key(auth[6:].strip())
    # gRPC metadata takes printable ASCII only: any other value is no key, and passing it
    # on would fail the call (a 500) where the answer is 401, or 200 with keys off
    if auth and auth.isascii() and auth.isprintable():
        return (*pairs, ("authorization", auth))
    return pairs


def face_of(path: str) -> str:
    """Which face a path belongs to (for the ledger, and for the shape of error
    answers): OpenAI's, Ollama's, or the seed's."""
    if path.startswith("/v1/"):
        return "openai"
    if path.startswith("/api/"):
        return "ollama"
    return "rest"


def _basic_key(credentials: str) -> str | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return f"Bearer {password}" if sep and password else None


FALLBACK_HEADER = "x-llm-fallback-from"


def fallback_headers(message: object, base: dict[str, str] | None = None) -> dict[str, str]:
    """The response headers saying a fallback model answered (every face sends it)."""
    headers = dict(base or {})
    fallback = getattr(message, "fallback_from", "")
    if fallback:
        headers[FALLBACK_HEADER] = fallback
    return headers
