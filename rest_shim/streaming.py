"""The HTTP response of a streamed RPC, which ends the RPC on every way out.

Starlette's ``StreamingResponse`` leaves its body iterator suspended when the client
goes away while a write is pending (the iterator is closed only when the garbage
collector gets to it), and notices a client that left between two events only at the
next write. For a stream that holds a generation slot and an Ollama connection,
neither is acceptable. ``RpcStreamResponse``:

- cancels the RPC as soon as the client disconnects (``http.disconnect``), even while
  no event is being written, so the servicer releases its slot and closes its Ollama
  request at once;
- on every way out (finished, client gone, write failed, task cancelled) closes the
  body iterator and cancels the RPC, so nothing is left suspended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class Cancellable(Protocol):
    def cancel(self) -> bool: ...


class RpcStreamResponse(Response):
    def __init__(
        self,
        events: AsyncGenerator[bytes],
        call: Cancellable,
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # No body: the headers get no Content-Length (as StreamingResponse's).
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self._events = events
        self._call = call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._cancel_on_disconnect(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in self._events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away (servers that say so on write)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # Not this task: the RPC, cancelled because the client left (a gRPC
            # channel's call raises CancelledError on read once cancelled).
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._events.aclose()
            self._call.cancel()

    async def _cancel_on_disconnect(self, receive: Receive) -> None:
        """The request body was read before the stream started, so what ``receive``
        yields now is the client's disconnect."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self._call.cancel()
