"""Settings of both processes, built once from an environment mapping.

Only the entry points read ``os.environ``; everything else receives a ``Settings``.
A bad value raises ``ConfigError`` naming the variable, and start-up stops with that
one line: no silent fallback to a default.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from server import config_values as parse
from server.usage.callers import Caller, load_callers

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


KINDS = ("ollama", "openai")


@dataclass(frozen=True)
class Upstream:
    """One named upstream of LLM_UPSTREAMS: a kind ("ollama", or "openai" for vLLM,
    llama.cpp's server, SGLang and the like) and its URLs; its API key (for the
    openai kind) comes from LLM_UPSTREAM_<NAME>_API_KEY."""

    name: str
    kind: str
    urls: tuple[str, ...]
    api_key: str = ""

    def display(self) -> str:
        urls = ",".join(without_credentials(u) for u in self.urls)
        return f"{self.name}={self.kind}+{urls}"


@dataclass(frozen=True)
class Settings:
    ollama_base_url: str = "http://localhost:11434"
    max_tokens: int = 2048
    temperature: float = 0.7
    top_p: float = 0.9
    timeout: float = 120.0
    cache_duration: float = 30.0
    connect_timeout: float = 5.0
    probe_timeout: float = 2.0
    ollama_max_line_bytes: int = 16 * 1024 * 1024
    log_level: str = "INFO"
    host: str = "0.0.0.0"
    port: int = 8005
    reload: bool = False
    grpc_port: int = 50051
    grpc_target: str = "127.0.0.1:50051"
    default_model: str = "gpt-oss:20b"
    embedding_model: str = "bge-m3"
    key_models: tuple[str, ...] = ("gpt-oss", "bge-m3")
    max_request_bytes: int = 1024 * 1024
    max_header_bytes: int = 64 * 1024
    request_head_timeout: float = 10.0
    max_connections: int = 1000
    shutdown_grace: float = 30.0
    first_token_timeout: float = 60.0
    host_cooldown: float = 10.0
    max_concurrent: int = 4
    max_queue: int = 64
    queue_timeout: float = 30.0
    max_message_chars: int = 200_000
    max_history: int = 200
    max_embed_inputs: int = 256
    api_keys: tuple[str, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    cors_origins: tuple[str, ...] = ()
    log_format: str = "text"
    metrics_port: int = 0
    ollama_api_port: int = 0
    image_url_hosts: tuple[str, ...] = ()
    reasoning_budget: int = 2048
    upstreams_spec: tuple[Upstream, ...] = ()
    callers: tuple[Caller, ...] = ()
    ledger: bool = True
    data_dir: str = "./data"
    database_url: str = ""
    ledger_retention_days: float = 90.0
    model_limits: tuple[tuple[str, int], ...] = ()
    fallbacks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    preload: tuple[str, ...] = ()
    keep_alive: str = ""
    keep_alive_lower: bool = False

    @property
    def ollama_urls(self) -> tuple[str, ...]:
        """OLLAMA_BASE_URL may list several hosts, comma-separated."""
        return tuple(u.strip() for u in self.ollama_base_url.split(",") if u.strip())

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        """LLM_UPSTREAMS, or the one Ollama upstream of OLLAMA_BASE_URL."""
        return self.upstreams_spec or (Upstream("ollama", "ollama", self.ollama_urls),)

    @property
    def ollama_display_url(self) -> str:
        """The upstreams as they may be shown: without user or password."""
        if self.upstreams_spec:
            return ";".join(u.display() for u in self.upstreams_spec)
        return ",".join(without_credentials(u) for u in self.ollama_urls)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; unset ones keep their defaults."""
        d = cls()
        r = _Reader(env)
        settings = cls(
            ollama_base_url=r.get("OLLAMA_BASE_URL", d.ollama_base_url, parse.url),
            max_tokens=r.get("OLLAMA_MAX_TOKENS", d.max_tokens, parse.positive_int),
            temperature=r.get("OLLAMA_TEMPERATURE", d.temperature, parse.temperature),
            top_p=r.get("OLLAMA_TOP_P", d.top_p, parse.top_p),
            timeout=r.get("OLLAMA_TIMEOUT", d.timeout, parse.positive_float),
            cache_duration=r.get(
                "OLLAMA_CACHE_DURATION", d.cache_duration, parse.non_negative_float
            ),
            connect_timeout=r.get(
                "OLLAMA_CONNECT_TIMEOUT", d.connect_timeout, parse.positive_float
            ),
            probe_timeout=r.get("OLLAMA_PROBE_TIMEOUT", d.probe_timeout, parse.positive_float),
            ollama_max_line_bytes=r.get(
                "OLLAMA_MAX_LINE_BYTES", d.ollama_max_line_bytes, parse.line_bytes
            ),
            log_level=r.get("LOG_LEVEL", d.log_level, parse.log_level),
            host=r.get("HOST", d.host, parse.non_empty),
            port=r.get("PORT", d.port, parse.port),
            reload=r.get("RELOAD", d.reload, parse.boolean),
            grpc_port=r.get("GRPC_PORT", d.grpc_port, parse.port),
            grpc_target=r.get("GRPC_TARGET", d.grpc_target, parse.non_empty),
            default_model=r.get("LLM_DEFAULT_MODEL", d.default_model, parse.non_empty),
            embedding_model=r.get("LLM_EMBEDDING_MODEL", d.embedding_model, parse.non_empty),
            key_models=r.get("LLM_KEY_MODELS", d.key_models, parse.name_list),
            max_request_bytes=r.get("MAX_REQUEST_BYTES", d.max_request_bytes, parse.positive_int),
            max_header_bytes=r.get("MAX_HEADER_BYTES", d.max_header_bytes, parse.header_bytes),
            request_head_timeout=r.get(
                "REQUEST_HEAD_TIMEOUT", d.request_head_timeout, parse.positive_float
            ),
            max_connections=r.get("MAX_CONNECTIONS", d.max_connections, parse.positive_int),
            shutdown_grace=r.get("SHUTDOWN_GRACE", d.shutdown_grace, parse.non_negative_float),
            first_token_timeout=r.get(
                "OLLAMA_FIRST_TOKEN_TIMEOUT", d.first_token_timeout, parse.positive_float
            ),
            host_cooldown=r.get("OLLAMA_HOST_COOLDOWN", d.host_cooldown, parse.non_negative_float),
            max_concurrent=r.get("LLM_MAX_CONCURRENT", d.max_concurrent, parse.positive_int),
            max_queue=r.get("LLM_MAX_QUEUE", d.max_queue, parse.non_negative_int),
            queue_timeout=r.get("LLM_QUEUE_TIMEOUT", d.queue_timeout, parse.non_negative_float),
            max_message_chars=r.get(
                "LLM_MAX_MESSAGE_CHARS", d.max_message_chars, parse.positive_int
            ),
            max_history=r.get("LLM_MAX_HISTORY", d.max_history, parse.non_negative_int),
            max_embed_inputs=r.get("LLM_MAX_EMBED_INPUTS", d.max_embed_inputs, parse.positive_int),
            api_keys=_api_keys(r),
            tls_cert=r.get("GRPC_TLS_CERT", d.tls_cert, parse.readable_file),
            tls_key=r.get("GRPC_TLS_KEY", d.tls_key, parse.readable_file),
            cors_origins=r.get("CORS_ORIGINS", d.cors_origins, parse.origins),
            log_format=r.get("LOG_FORMAT", d.log_format, parse.log_format),
            metrics_port=r.get("METRICS_PORT", d.metrics_port, parse.optional_port),
            ollama_api_port=r.get("OLLAMA_API_PORT", d.ollama_api_port, parse.optional_port),
            image_url_hosts=r.get("LLM_IMAGE_URL_HOSTS", d.image_url_hosts, parse.hosts),
            reasoning_budget=r.get(
                "LLM_REASONING_BUDGET", d.reasoning_budget, parse.non_negative_int
            ),
            model_limits=r.get("LLM_MODEL_LIMITS", d.model_limits, parse.model_limits),
            fallbacks=r.get("LLM_FALLBACKS", d.fallbacks, parse.fallbacks),
            preload=r.get("LLM_PRELOAD", d.preload, parse.name_list),
            keep_alive=r.get("LLM_KEEP_ALIVE", d.keep_alive, parse.keep_alive),
            keep_alive_lower=r.get("LLM_KEEP_ALIVE_LOWER", d.keep_alive_lower, parse.boolean),
            ledger=r.get("LLM_LEDGER", d.ledger, parse.boolean),
            data_dir=r.get("LLM_DATA_DIR", d.data_dir, parse.non_empty),
            database_url=r.get("LLM_DATABASE_URL", d.database_url, parse.database_url),
            ledger_retention_days=r.get(
                "LLM_LEDGER_RETENTION_DAYS", d.ledger_retention_days, parse.positive_float
            ),
            callers=r.get("LLM_CALLERS_FILE", d.callers, load_callers),
        )
        upstreams = r.get("LLM_UPSTREAMS", d.upstreams_spec, _upstreams)
        if upstreams:
            upstreams = tuple(_with_key(u, env) for u in upstreams)
            if env.get("OLLAMA_BASE_URL", "").strip():
                upstreams = _with_ollama(settings.ollama_urls, upstreams)
            settings = dataclasses.replace(settings, upstreams_spec=upstreams)
        if bool(settings.tls_cert) != bool(settings.tls_key):
            raise ConfigError("GRPC_TLS_CERT and GRPC_TLS_KEY must be set together")
        return settings


def without_credentials(url: str) -> str:
    """``url`` without the user and password it may carry (shown, logged, labelled)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def settings_or_exit(env: Mapping[str, str]) -> Settings:
    """For the entry points: the settings, or one clear line on stderr and exit 2."""
    try:
        return Settings.from_env(env)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from None


def _api_keys(r: _Reader) -> tuple[str, ...]:
    """Keys from LLM_API_KEYS (comma-separated) and LLM_API_KEYS_FILE (one per line)."""
    none: tuple[str, ...] = ()
    keys = list(r.get("LLM_API_KEYS", none, parse.name_list))
    path = r.get("LLM_API_KEYS_FILE", "", parse.readable_file)
    if path:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                key = parse.key_line(line)
                if key is None:
                    continue
                if any(c.isspace() for c in key):
                    # the key itself is never shown, only where it is
                    raise ConfigError(
                        f"LLM_API_KEYS_FILE={path!r} line {number}: one key per line, "
                        "without spaces (comments start with #)"
                    )
                keys.append(key)
        if not keys:
            raise ConfigError(f"LLM_API_KEYS_FILE={path!r} holds no key")
    return tuple(keys)


def _upstreams(raw: str) -> tuple[Upstream, ...]:
    """``name=kind+url[,url...]`` entries separated by ``;``."""
    found: list[Upstream] = []
    for item in (i.strip() for i in raw.split(";")):
        if not item:
            continue
        name, sep, rest = item.partition("=")
        kind, plus, urls = rest.partition("+")
        name, kind = name.strip(), kind.strip().lower()
        if not sep or not plus or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
            raise ValueError(
                f"expected name=kind+url[,url...] like big=openai+http://vllm:8000, got {item!r}"
            )
        if kind not in KINDS:
            raise ValueError(f"upstream {name!r}: kind must be one of {', '.join(KINDS)}")
        if any(u.name == name for u in found):
            raise ValueError(f"upstream {name!r} is listed twice")
        found.append(Upstream(name, kind, tuple(parse.url(urls).split(","))))
    if not found:
        raise ValueError("expected at least one upstream")
    every = [url for u in found for url in u.urls]
    if len(set(every)) != len(every):
        raise ValueError("the same URL is listed twice")
    return tuple(found)


def _with_ollama(urls: tuple[str, ...], upstreams: tuple[Upstream, ...]) -> tuple[Upstream, ...]:
    """OLLAMA_BASE_URL's hosts as the upstream "ollama", first, beside LLM_UPSTREAMS."""
    if any(u.name == "ollama" for u in upstreams):
        raise ConfigError(
            "LLM_UPSTREAMS names an upstream 'ollama' and OLLAMA_BASE_URL is set too: "
            "list the Ollama hosts in one place"
        )
    listed = {url for u in upstreams for url in u.urls}
    if listed & set(urls):
        raise ConfigError("a URL of OLLAMA_BASE_URL is listed in LLM_UPSTREAMS too")
    return (Upstream("ollama", "ollama", urls), *upstreams)


def _with_key(upstream: Upstream, env: Mapping[str, str]) -> Upstream:
    variable = f"LLM_UPSTREAM_{re.sub(r'[^A-Z0-9]', '_', upstream.name.upper())}_API_KEY"
    return dataclasses.replace(upstream, api_key=env.get(variable, "").strip())
