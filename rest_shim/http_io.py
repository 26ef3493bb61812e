"""Reading request bodies within limits, and cancelling work when the client leaves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.types import Receive

from rest_shim.errors import ShimError
from rest_shim.fastjson import JSONDecodeError, loads
from server.validation import MAX_JSON_DEPTH, json_depth

T = TypeVar("T")


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object: 413 over ``limit`` bytes, 400 when it is not JSON or
    nests deeper than ``MAX_JSON_DEPTH``, 422 when it is JSON but not an object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ShimError(413, "payload_too_large", f"request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ShimError(413, "payload_too_large", f"request body is over {limit} bytes")
        chunks.append(chunk)
    try:
        data = loads(b"".join(chunks))
    except JSONDecodeError as exc:
        raise ShimError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ShimError(422, "invalid_body", "request body must be a JSON object")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ShimError(
            400, "invalid_argument", f"request body is nested deeper than {MAX_JSON_DEPTH} levels"
        )
    return data


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClientDisconnected(Exception):
    """The HTTP client went away before the answer was ready."""


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` (an RPC), cancelling it if the HTTP client disconnects first.

    Call only after the body has been read: from then on ``receive`` yields nothing
    but ``http.disconnect``. Cancelling the RPC cancels the server's Ollama request.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise ClientDisconnected
    return task.result()
