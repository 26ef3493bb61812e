"""The Starlette app of the HTTP faces, given the stub they call (or a grpc.aio
channel opened in its lifespan)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc
from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from rest_shim import routes
from rest_shim.backend import Backend, face_of
from rest_shim.console import console_routes
from rest_shim.errors import ShimError, error_response, rpc_error_handler, shim_error_handler
from rest_shim.fastjson import JSONResponse
from rest_shim.middleware import HttpMetrics, RequestContext
from rest_shim.ollama.routes import Endpoint, ollama_routes, running_text
from rest_shim.openai_compat import openai_error, openai_routes
from rest_shim.openapi import docs_page, openapi_document
from rest_shim.stub import LlmStub
from rest_shim.usage import usage
from server.config import Settings

log = logging.getLogger("llm.rest")

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def gin_error_handler(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods on Ollama's routes (``/api/...``, and every path of
    Ollama's own port), answered as Ollama's gin does."""
    assert isinstance(exc, HTTPException)
    text = {404: "404 page not found", 405: "405 method not allowed"}.get(exc.status_code)
    if text is not None:
        return PlainTextResponse(text, status_code=exc.status_code)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    face = face_of(request.url.path)
    if face == "ollama":  # gin's answers
        return await gin_error_handler(request, exc)
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no route {request.url.path}"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers or {})
    if face == "openai":  # OpenAI-style callers read OpenAI's shape
        return openai_error(exc.status_code, str(detail), code, headers=headers)
    return error_response(exc.status_code, code, detail, headers)


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("REST %s %s failed unexpectedly", request.method, request.url.path)
    face = face_of(request.url.path)
    if face == "ollama":
        return JSONResponse({"error": "internal error"}, status_code=500)
    if face == "openai":
        return openai_error(500, "internal error", "internal")
    return error_response(500, "internal", "internal error")


async def openapi_route(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def docs_route(request: Request) -> Response:
    return docs_page(openapi_document())


def create_app(
    settings: Settings,
    stub: LlmStub | None = None,
    *,
    server_metrics: Callable[[], bytes] | None = None,
    ollama_only: bool = False,
) -> Starlette:
    """The HTTP faces, calling ``stub``; without one, a grpc.aio channel to
    ``settings.grpc_target`` opened in the app's lifespan. ``server_metrics``: the
    exposition of the metrics of a gRPC server in the same process, served on /metrics
    before the faces' own (distinct names, so nothing is counted twice); without it the
    process's own metrics are reported instead. With ``ollama_only``, Ollama's face
    alone, for a port of its own (OLLAMA_API_PORT): ``GET /`` answers "Ollama is
    running" there, so a client that knows only Ollama's URL changes host and port,
    nothing else."""
    http_metrics = HttpMetrics()
    if server_metrics is None:  # alone in its process: report the process too
        ProcessCollector(registry=http_metrics.registry)

    async def metrics_route(request: Request) -> Response:
        body = generate_latest(http_metrics.registry)
        if server_metrics is not None:
            body = server_metrics() + body
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if stub is not None:
            app.state.backend = Backend(settings, stub)
            log.info("REST shim calling the gRPC service in process")
            yield
            return
        # The gRPC server is a neighbour: never reach it through an HTTP proxy from the
        # environment (grpc reads http_proxy otherwise).
        options = [("grpc.enable_http_proxy", 0)]
        async with grpc.aio.insecure_channel(settings.grpc_target, options=options) as channel:
            app.state.backend = Backend(settings, pb_grpc.LlmServiceStub(channel))
            log.info("REST shim forwarding to gRPC %s", settings.grpc_target)
            yield

    served = _ollama_port_routes() if ollama_only else _routes(metrics_route)
    app = Starlette(
        routes=served,
        exception_handlers={
            ShimError: shim_error_handler,
            grpc.aio.AioRpcError: rpc_error_handler,
            HTTPException: gin_error_handler if ollama_only else http_error_handler,
            Exception: internal_error_handler,
        },
        middleware=_middleware(settings),
        lifespan=lifespan,
    )
    routes_seen = [r for r in app.routes if isinstance(r, Route)]
    app.add_middleware(RequestContext, routes=routes_seen, metrics=http_metrics)
    return app


def _ollama_port_routes() -> list[Route]:
    return [Route("/", running_text, methods=["GET", "HEAD"]), *ollama_routes()]


def _routes(metrics_route: Endpoint) -> list[Route]:
    return [
        Route("/", routes.root, methods=["GET"]),
        Route("/health", routes.health, methods=["GET"]),
        Route("/livez", routes.livez, methods=["GET"]),
        Route("/readyz", routes.readyz, methods=["GET"]),
        Route("/models", routes.models, methods=["GET"]),
        Route("/chat", routes.chat, methods=["POST"]),
        Route("/chat/stream", routes.chat_stream, methods=["POST"]),
        Route("/embeddings", routes.embeddings, methods=["POST"]),
        Route("/stats", routes.stats, methods=["GET"]),
        Route("/usage", usage, methods=["GET"]),
        Route("/openapi.json", openapi_route, methods=["GET"]),
        Route("/docs", docs_route, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        *openai_routes(),
        *ollama_routes(),
        *console_routes(),
    ]


def _middleware(settings: Settings) -> list[Middleware]:
    """CORS only when origins are configured: explicit origins, no credentials."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after"],
            allow_credentials=False,
            max_age=600,
        )
    ]
