"""Parsers of single setting values, for ``server.config``: each takes the stripped,
non-empty text of one variable and returns its value, or raises ``ValueError`` saying
what it expected (the reader adds the variable's name).
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# A Go duration, as Ollama parses keep_alive: "5m", "1h30m", "-1s", "300ms".
GO_DURATION = re.compile(r"-?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+")
# Longest keep_alive in seconds (about 68 years; a negative one keeps the model loaded).
MAX_KEEP_ALIVE = 2**31 - 1


def non_empty(raw: str) -> str:
    return raw


def _whole(raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < minimum:
        raise ValueError(
            "expected a number above 0" if minimum else "expected a number of 0 or more"
        )
    return value


def positive_int(raw: str) -> int:
    return _whole(raw, 1)


def non_negative_int(raw: str) -> int:
    return _whole(raw, 0)


def _bytes(raw: str, minimum: int) -> int:
    value = positive_int(raw)
    if value < minimum:
        raise ValueError(f"expected at least {minimum} (bytes)")
    return value


def header_bytes(raw: str) -> int:
    return _bytes(raw, 1024)


def line_bytes(raw: str) -> int:
    return _bytes(raw, 65536)


def port(raw: str) -> int:
    value = positive_int(raw)
    if value > 65535:
        raise ValueError("expected a port from 1 to 65535")
    return value


def _float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def positive_float(raw: str) -> float:
    value = _float(raw)
    if value <= 0:
        raise ValueError("expected a number above 0")
    return value


def non_negative_float(raw: str) -> float:
    value = _float(raw)
    if value < 0:
        raise ValueError("expected a number of 0 or more")
    return value


def temperature(raw: str) -> float:
    value = _float(raw)
    if not 0 <= value <= 2:
        raise ValueError("expected a number from 0 to 2")
    return value


def top_p(raw: str) -> float:
    value = _float(raw)
    if not 0 < value <= 1:
        raise ValueError("expected a number above 0 and at most 1")
    return value


def log_level(raw: str) -> str:
    value = raw.upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return value


def log_format(raw: str) -> str:
    value = raw.lower()
    if value not in ("text", "json"):
        raise ValueError("expected text or json")
    return value


def optional_port(raw: str) -> int:
    """A port, or 0 for off."""
    return 0 if raw == "0" else port(raw)


def boolean(raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def url(raw: str) -> str:
    """One URL, or several separated by commas (several Ollama hosts)."""
    urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    if not urls:
        raise ValueError("expected an http:// or https:// URL")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected http:// or https:// URLs, got {url!r}")
    if len(set(urls)) != len(urls):
        raise ValueError("the same URL is listed twice")
    return ",".join(urls)


def readable_file(raw: str) -> str:
    try:
        with open(raw, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror}") from None
    return raw


def origins(raw: str) -> tuple[str, ...]:
    origins = name_list(raw)
    for origin in origins:
        if origin == "*":
            raise ValueError("list the allowed origins explicitly; '*' is not accepted")
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(f"expected origins like https://app.example.com, got {origin!r}")
    return origins


def key_line(line: str) -> str | None:
    """The key on one line of a keys file, or None for a blank or comment line.

    A comment starts with ``#`` at the start of the line, after leading whitespace, or
    after whitespace following the key (``key  # who uses it``); a ``#`` inside a key
    (no whitespace before it) belongs to the key.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    comment = re.search(r"\s#", text)
    return text[: comment.start()].strip() if comment else text


def database_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("postgresql", "postgres"):
        raise ValueError("expected a postgresql:// URL")
    return raw


def model_limits(raw: str) -> tuple[tuple[str, int], ...]:
    """``model=slots`` pairs, comma-separated; a model may be a pattern (``gpt-oss*``)."""
    limits = []
    for item in name_list(raw):
        model, sep, count = item.rpartition("=")
        if not sep or not model.strip():
            raise ValueError(f"expected model=slots pairs like gpt-oss:20b=2, got {item!r}")
        limits.append((model.strip(), positive_int(count.strip())))
    return tuple(limits)


def fallbacks(raw: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``model=first|second`` chains, comma-separated."""
    chains = []
    for item in name_list(raw):
        model, sep, chain = item.partition("=")
        others = tuple(m.strip() for m in chain.split("|") if m.strip())
        if not sep or not model.strip() or not others:
            raise ValueError(
                f"expected chains like gpt-oss:20b=gpt-oss:latest|llama3.1:8b, got {item!r}"
            )
        if model.strip() in others:
            raise ValueError(f"{model.strip()!r} falls back to itself")
        chains.append((model.strip(), others))
    return tuple(chains)


def keep_alive(raw: str) -> str:
    """Seconds, or a Go duration like 5m or 1h30m (Ollama's keep_alive)."""
    if GO_DURATION.fullmatch(raw):
        return raw
    if not re.fullmatch(r"-?\d+(\.\d+)?", raw):
        raise ValueError("expected seconds or a duration like 5m")
    if abs(float(raw)) > MAX_KEEP_ALIVE:
        raise ValueError(f"expected seconds from -{MAX_KEEP_ALIVE} to {MAX_KEEP_ALIVE}")
    return raw


def hosts(raw: str) -> tuple[str, ...]:
    hosts = tuple(h.lower() for h in name_list(raw))
    for host in hosts:
        if "/" in host or (":" in host.strip("[]") and not host.startswith("[")):
            raise ValueError(f"expected host names like images.example.com, got {host!r}")
    return hosts


def name_list(raw: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    if not names:
        raise ValueError("expected a comma-separated list of names")
    return names
