"""Makes a server's ``stop`` land right next to asyncio accepting a connection.

asyncio's selector loop accepts connections in the listening socket's read callback and
sets each one up (transport, then protocol) in a task of its own, on the following turns
of the loop. A request from another thread (``loop.call_soon_threadsafe``, which is how
``ThreadedServer.stop`` reaches the loop) normally runs well before or well after; under
load it can run in the same turn as the accept, just before or just after it.
"""

from __future__ import annotations

import select
import threading

from ollama_emulator import ThreadedServer

_WAIT = 10.0


def hold_stop_at_accept(server: ThreadedServer, *, after: bool) -> threading.Event:
    """Holds ``server``'s loop until a client connects, then until another thread asks
    the loop for something (``server.stop()``): that request then runs in the turn where
    asyncio accepts the connection, just ``after`` the accept (before the set-up) or just
    before it.

    Returns an event set once the loop is held, the moment to call ``stop``.
    """
    uvicorn_server, listener = server._server, server._sock
    assert uvicorn_server is not None and uvicorn_server.loop is not None
    assert listener is not None
    loop = uvicorn_server.loop
    wakeup = loop._ssock  # type: ignore[attr-defined]  # what call_soon_threadsafe writes to
    armed, held = threading.Event(), threading.Event()

    def wait_for_stop() -> None:
        held.set()
        select.select([wakeup], [], [], _WAIT)

    def wait_for_client() -> None:
        armed.set()  # nothing connected when this turn polled
        if not select.select([listener], [], [], _WAIT)[0]:
            return
        if after:
            # Ahead of the accept callback that the next turn's poll queues: a request
            # made while this holds the loop is queued behind that callback.
            loop.call_soon(wait_for_stop)
        else:
            wait_for_stop()  # a request made now is queued ahead of the next poll's

    # One turn later, once the loop has read this call's own wake-up byte.
    assert uvicorn_server.call_soon(lambda: loop.call_soon(wait_for_client))
    assert armed.wait(_WAIT)
    return held
