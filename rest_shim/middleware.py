"""Pure ASGI middleware of the REST face (BaseHTTPMiddleware would hide
``http.disconnect`` from the routes, and with it cancellation).

``RequestContext`` gives every request an id (the caller's ``x-request-id`` when it is a
sane token, a fresh one otherwise), puts it in the logging context and in the
response headers, and counts the request by route template and status.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.logs import REQUEST_ID_HEADER, new_request_id, request_id

OTHER_ROUTE = "other"


class HttpMetrics:
    """The REST face's own counters: by route template, never by raw path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "llm_http_requests",
            "REST requests by route, method and HTTP status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "llm_http_request_duration_seconds",
            "REST request duration until the response ended.",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )


class RequestContext:
    def __init__(self, app: ASGIApp, routes: list[Route], metrics: HttpMetrics) -> None:
        self.app = app
        self._routes = routes
        self._metrics = metrics
        # Fixed paths only (bounded by the route table), so no caller can grow it.
        self._static = frozenset(r.path for r in routes if "{" not in r.path)

    def _route(self, scope: Scope) -> str:
        path: str = scope["path"]
        if path in self._static:
            return path
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:  # PARTIAL: the path matches, the method does not
                return route.path
        return OTHER_ROUTE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                offered = value.decode("latin-1")
        rid = new_request_id(offered)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route, method = self._route(scope), scope["method"]
            self._metrics.requests.labels(route, method, str(status)).inc()
            self._metrics.latency.labels(route, method).observe(time.perf_counter() - started)
            request_id.reset(token)
