"""Logging for both processes: one line per event, as readable text or as JSON.

Every line carries the request id of the request it belongs to (a context variable set
by the gRPC call tracker and by the REST shim's middleware). Structured fields passed
with ``extra={"fields": {...}}`` (model, tokens, ms, outcome, code...) become JSON keys,
or ``key=value`` pairs in text. Prompts and answers are logged only at DEBUG.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"
REQUEST_ID_HEADER = "x-request-id"
# Metadata the HTTP faces add: which of them a request came through (logs, ledger).
FACE_KEY = "x-llm-face"
FACES = frozenset({"grpc", "rest", "openai", "ollama"})
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_id: ContextVar[str] = ContextVar("request_id", default="-")


def new_request_id(offered: str | None = None) -> str:
    """The caller's id when it is a sane token, otherwise a fresh one."""
    if offered and _VALID_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        if fields:
            line += " " + " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        return line


def _text(value: Any) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, category, request_id, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id.get()),
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def make_handler(fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    return handler


# uvicorn's own loggers ("Started server process", "Uvicorn running on ...", errors of
# the HTTP layer); uvicorn.access stays off (access_log=False), the service logs requests.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers keep no handler of their own and hand every
    record to the root handler of ``configure_logging``, so that LOG_FORMAT=json makes
    every line JSON (uvicorn's default config prints its own ``INFO:     ...`` text)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
    }


def configure_logging(level: str, fmt: str = "text", stream: IO[str] | None = None) -> None:
    handler = make_handler(fmt, stream)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; the service logs its own line per request.
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
