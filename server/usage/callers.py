"""Named callers (LLM_CALLERS_FILE): who a key belongs to, and that caller's limits.

The file is TOML, one ``[[caller]]`` table per caller, every limit optional::

    [[caller]]
    name = "rag"                  # in logs, metrics and the ledger; never the key
    key = "..."                   # or key_sha256 = "<hex digest of the key>"
    priority = "batch"            # "interactive" (default) or "batch"
    requests_per_minute = 120
    tokens_per_day = 2000000      # prompt + response tokens, as the upstream counted them
    max_concurrent = 2            # generations at once
    models = ["gpt-oss:20b", "bge-m3"]   # allowed models; all when absent
    admin = false                 # may read everyone's usage

Keys of LLM_API_KEYS and LLM_API_KEYS_FILE keep working: callers without limits, named
``key-`` and the first 8 hex digits of the key's SHA-256 (not the key). With no key at
all configured, every request is the caller "anonymous".
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.names import canonical

PRIORITIES = ("interactive", "batch")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FIELDS = {
    "name",
    "key",
    "key_sha256",
    "priority",
    "requests_per_minute",
    "tokens_per_day",
    "max_concurrent",
    "models",
    "admin",
}


@dataclass(frozen=True)
class Caller:
    name: str
    digest: bytes = b""
    priority: str = "interactive"
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    max_concurrent: int | None = None
    models: tuple[str, ...] | None = None
    admin: bool = False
    _allowed: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # canonical() once per model, not on every request
        allowed = frozenset(canonical(m) for m in self.models or ())
        object.__setattr__(self, "_allowed", allowed)

    def allows(self, model: str) -> bool:
        return self.models is None or canonical(model) in self._allowed

    @property
    def limited(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_day or self.max_concurrent)


ANONYMOUS = Caller("anonymous", admin=True)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def load_callers(path: str) -> tuple[Caller, ...]:
    """The callers of a TOML file; ``ValueError`` naming the table and field at fault."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    tables = data.get("caller")
    if not isinstance(tables, list) or not tables:
        raise ValueError("expected [[caller]] tables")
    callers = [_caller(i, table) for i, table in enumerate(tables)]
    for what, values in (
        ("name", [c.name for c in callers]),
        ("key", [c.digest for c in callers]),
    ):
        if len(set(values)) != len(values):
            raise ValueError(f"two callers have the same {what}")
    return tuple(callers)


def _caller(index: int, table: Any) -> Caller:
    where = f"caller {index + 1}"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table")
    unknown = set(table) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be 1-64 letters, digits, _ . or -")
    where = f"caller {name!r}"
    key, hexed = table.get("key"), table.get("key_sha256")
    if (key is None) == (hexed is None):
        raise ValueError(f"{where}: give key or key_sha256 (one of them)")
    if key is not None:
        if not isinstance(key, str) or not key.strip() or key != key.strip():
            raise ValueError(f"{where}: key must be a non-empty string without spaces around")
        secret = digest(key)
    else:
        if not isinstance(hexed, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", hexed):
            raise ValueError(f"{where}: key_sha256 must be 64 hex digits")
        secret = bytes.fromhex(hexed)
    priority = table.get("priority", "interactive")
    if priority not in PRIORITIES:
        raise ValueError(f"{where}: priority must be interactive or batch")
    limits = {k: _positive(table, k, where) for k in _LIMITS}
    models = table.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) and m for m in models)
    ):
        raise ValueError(f"{where}: models must be a list of model names")
    admin = table.get("admin", False)
    if not isinstance(admin, bool):
        raise ValueError(f"{where}: admin must be true or false")
    return Caller(
        name=name,
        digest=secret,
        priority=priority,
        models=tuple(models) if models is not None else None,
        admin=admin,
        **limits,
    )


_LIMITS = ("requests_per_minute", "tokens_per_day", "max_concurrent")


def _positive(table: dict[str, Any], key: str, where: str) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: {key} must be a whole number above 0")
    return value


class Callers:
    """Every key's caller: the named callers and the plain API keys."""

    def __init__(self, named: Iterable[Caller], api_keys: Iterable[str]) -> None:
        self.named = tuple(named)
        self._by_digest: dict[bytes, Caller] = {}
        for key in api_keys:
            secret = digest(key)
            self._by_digest[secret] = Caller(f"key-{secret.hex()[:8]}", secret)
        for caller in self.named:
            self._by_digest[caller.digest] = caller

    def digests(self) -> list[bytes]:
        return list(self._by_digest)

    def identify(self, authorization: str | None) -> Caller:
        """The caller an ``Authorization: Bearer <key>`` value names (a key already
        admitted by the key check); "anonymous" without keys."""
        if not self._by_digest:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return ANONYMOUS
        return self._by_digest.get(digest(token.strip()), ANONYMOUS)
