"""The console's routes: its three static files and the two JSON documents it polls.

The JSON is built from the RPCs (Health, Stats, ListModels, ShowModel,
ListRunningModels) with the caller's metadata, so API keys apply as on every route: a
missing or wrong key is a 401 (the page then asks for one). A section the key may not
see, or that fails (Ollama down), is left out and named in ``errors``; the rest is still
shown. Nothing here carries keys or URL credentials: hosts are the server's display
URLs, and failures carry codes, never messages or prompts.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.backend import PROBE_DEADLINE, backend, metadata
from rest_shim.errors import rpc_error_parts
from rest_shim.fastjson import JSONResponse
from rest_shim.mapping import iso, to_plain
from server.version import SERVICE_VERSION

T = TypeVar("T")
JsonDict = dict[str, Any]

# Only the console's own files and calls: no inline script or style, no other origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# path -> (file under static/, media type)
STATIC_FILES = {
    "/console": ("index.html", "text/html; charset=utf-8"),
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
}
# The generations' lanes; one for now, every generation shares LLM_MAX_CONCURRENT.
ALL_LANE = "all"
DAY = 86400


@functools.cache
def _asset(name: str) -> bytes:
    """A static file, read from the installed package (the wheel ships them)."""
    return (resources.files(__package__) / "static" / name).read_bytes()


def _static(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
        return Response(_asset(name), media_type=media_type, headers=headers)

    return serve


def _json(body: JsonDict) -> JSONResponse:
    return JSONResponse(body, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


async def _section(call: Awaitable[T]) -> T | grpc.aio.AioRpcError:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        return exc


def _errors(**sections: object) -> JsonDict:
    """The failed sections by name, as ``{code, detail, http_status}``; a missing or
    wrong key fails the whole answer instead (401, with its challenge)."""
    failed = {k: v for k, v in sections.items() if isinstance(v, grpc.aio.AioRpcError)}
    for exc in failed.values():
        if exc.code() is grpc.StatusCode.UNAUTHENTICATED:
            raise exc
    errors = {}
    for name, exc in failed.items():
        status, code, detail = rpc_error_parts(exc)
        errors[name] = {"code": code, "detail": detail, "http_status": status}
    return errors


def _loaded(running: pb.ListRunningModelsResponse | None) -> list[JsonDict]:
    if running is None:
        return []
    return [
        {
            "name": m.name,
            "host": m.host,
            "size": m.size,
            "size_vram": m.size_vram,
            "expires_at": m.expires_at,
            "context_length": m.context_length,
        }
        for m in running.models
    ]


async def overview(request: Request) -> Response:
    """Service, hosts, lanes, the last 15 minutes and the latest failures."""
    b, meta = backend(request), metadata(request)
    today = pb.UsageRequest(group_by=[pb.USAGE_GROUP_CALLER, pb.USAGE_GROUP_MODEL])
    today.since.FromSeconds(int(time.time()) // DAY * DAY)
    health, stats, running, usage = await asyncio.gather(
        _section(b.stub.Health(pb.HealthRequest(), timeout=PROBE_DEADLINE, metadata=meta)),
        _section(b.stub.Stats(pb.StatsRequest(), timeout=PROBE_DEADLINE, metadata=meta)),
        _section(
            b.stub.ListRunningModels(
                pb.ListRunningModelsRequest(), timeout=PROBE_DEADLINE, metadata=meta
            )
        ),
        _section(b.stub.Usage(today, timeout=PROBE_DEADLINE, metadata=meta)),
    )
    ledger_off = (
        isinstance(usage, grpc.aio.AioRpcError)
        and usage.code() is grpc.StatusCode.FAILED_PRECONDITION
    )
    errors = _errors(
        health=health, stats=stats, running=running, usage=None if ledger_off else usage
    )
    h = health if isinstance(health, pb.HealthResponse) else None
    s = stats if isinstance(stats, pb.StatsResponse) else None
    r = running if isinstance(running, pb.ListRunningModelsResponse) else None
    configuration = h.configuration if h is not None else (s.configuration if s else None)
    loaded = _loaded(r)
    held = {host.url: list(host.models) for host in s.hosts} if s is not None else {}
    hosts = [
        {
            **to_plain(host),
            "models": held.get(host.url),
            "loaded": [m for m in loaded if m["host"] == host.url],
        }
        for host in (h.ollama.hosts if h is not None else s.hosts if s is not None else [])
    ]
    body: JsonDict = {
        "service": {
            "status": h.status if h is not None else "unknown",
            "error": h.ollama.error if h is not None else "",
            "version": SERVICE_VERSION,
            "ollama_version": h.ollama.version if h is not None else "",
            "uptime_seconds": s.uptime_seconds if s is not None else None,
            "started_at": iso(s.started_at) if s is not None else None,
            "auth_enabled": configuration.auth_enabled if configuration else False,
            "default_model": configuration.default_model if configuration else "",
            "embedding_model": configuration.embedding_model if configuration else "",
            "missing_models": list(h.ollama.missing_models) if h is not None else [],
        },
        "hosts": hosts,
        "lanes": _lanes(s),
        "totals": _totals(s),
        "history": [to_plain(b) for b in s.history] if s is not None else [],
        "failures": [to_plain(f) for f in s.recent_failures] if s is not None else [],
        "usage": _usage(usage, ledger_off),
        "errors": errors,
        "timestamp": iso(s.timestamp) if s is not None else None,
    }
    return _json(body)


def _lanes(s: pb.StatsResponse | None) -> list[JsonDict]:
    """Every lane (LLM_MODEL_LIMITS), the default one ("*") named "all"."""
    if s is None:
        return []
    return [
        {
            "name": ALL_LANE if lane.name == "*" else lane.name,
            "running": lane.running,
            "queued": lane.queued,
            "max_concurrent": lane.limit,
            "max_queue": s.configuration.max_queue,
        }
        for lane in s.lanes
    ]


def _usage(usage: object, ledger_off: bool) -> JsonDict | None:
    """Today's requests and tokens per caller and model, from the ledger (the caller's
    own unless it is an admin); ``{"off": true}`` when the ledger is off."""
    if ledger_off:
        return {"off": True, "rows": []}
    if not isinstance(usage, pb.UsageResponse):
        return None
    return {
        "off": False,
        "since": iso(usage.since),
        "all_callers": usage.all_callers,
        "rows": [
            {
                "caller": row.caller,
                "model": row.model,
                "requests": row.requests,
                "prompt_tokens": row.prompt_tokens,
                "response_tokens": row.response_tokens,
                "failures": row.failures,
                "cancellations": row.cancellations,
            }
            for row in usage.rows
        ],
    }


def _totals(s: pb.StatsResponse | None) -> JsonDict | None:
    if s is None:
        return None
    t = s.totals
    return {
        "requests": t.total_requests,
        "successes": t.successful_requests,
        "failures": t.failed_requests,
        "cancelled": t.cancelled_requests,
        "prompt_tokens": t.prompt_tokens,
        "response_tokens": t.response_tokens,
        "retries": s.retries,
    }


def _today(name: str, days: list[pb.HistoryModelDay]) -> JsonDict:
    """The day's counts of ``name``: Stats keeps a model as callers named it, and
    "llama3.2" is Ollama's "llama3.2:latest"."""
    mine = [d for d in days if name in (d.model, f"{d.model}:latest")]
    return {
        "requests": sum(d.requests for d in mine),
        "failures": sum(d.failures for d in mine),
        "prompt_tokens": sum(d.prompt_tokens for d in mine),
        "response_tokens": sum(d.response_tokens for d in mine),
    }


async def models(request: Request) -> Response:
    """Every model with its details, capabilities, where it is loaded and its day."""
    b, meta = backend(request), metadata(request)
    listed, running, stats = await asyncio.gather(
        _section(b.stub.ListModels(pb.ListModelsRequest(), timeout=b.deadline, metadata=meta)),
        _section(
            b.stub.ListRunningModels(
                pb.ListRunningModelsRequest(), timeout=PROBE_DEADLINE, metadata=meta
            )
        ),
        _section(b.stub.Stats(pb.StatsRequest(), timeout=PROBE_DEADLINE, metadata=meta)),
    )
    errors = _errors(models=listed, running=running, stats=stats)
    known = list(listed.models) if isinstance(listed, pb.ListModelsResponse) else []
    s = stats if isinstance(stats, pb.StatsResponse) else None
    shown = await asyncio.gather(
        *(
            _section(
                b.stub.ShowModel(
                    pb.ShowModelRequest(model=m.name), timeout=b.deadline, metadata=meta
                )
            )
            for m in known
        )
    )
    errors.update(_errors(**{f"show:{m.name}": x for m, x in zip(known, shown, strict=True)}))
    loaded = _loaded(running if isinstance(running, pb.ListRunningModelsResponse) else None)
    days = list(s.models_today) if s is not None else []
    body: JsonDict = {
        "models": [_model(m, show, loaded, days) for m, show in zip(known, shown, strict=True)],
        "today_since": iso(s.today_since) if s is not None else None,
        "errors": errors,
    }
    return _json(body)


def _model(
    m: pb.ModelInfo,
    show: pb.ShowModelResponse | grpc.aio.AioRpcError,
    loaded: list[JsonDict],
    days: list[pb.HistoryModelDay],
) -> JsonDict:
    d = m.details
    return {
        "name": m.name,
        "family": d.family,
        "families": list(d.families),
        "parameter_size": d.parameter_size,
        "quantization_level": d.quantization_level,
        "format": d.format,
        "size": m.size,
        "modified_at": m.modified_at,
        "embedding": m.embedding,
        "capabilities": (
            list(show.capabilities) if isinstance(show, pb.ShowModelResponse) else None
        ),
        "loaded": [x for x in loaded if x["name"] in (m.name, m.model)],
        "today": _today(m.name, days),
    }


def console_routes() -> list[Route]:
    static = [
        Route(path, _static(name, media_type), methods=["GET"])
        for path, (name, media_type) in STATIC_FILES.items()
    ]
    return [
        *static,
        Route("/console/api/overview", overview, methods=["GET"]),
        Route("/console/api/models", models, methods=["GET"]),
    ]
