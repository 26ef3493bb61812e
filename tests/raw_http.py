"""Streamed chats asked for over a plain TCP socket, for clients that stop reading (a
tiny receive buffer) or cut the connection at any byte: ``tests/test_abandoned.py``
and the bench's soak phase (``bench/soak.py``)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any
from urllib.parse import urlsplit

MODEL = "llama3.2"


def stream_request(base_url: str, path: str, message: str) -> bytes:
    """The bytes of a POST asking ``path`` for a streamed chat of ``message``: the OpenAI
    body on ``/v1/`` paths, the native REST one otherwise."""
    body: dict[str, Any]
    if path.startswith("/v1/"):
        body = {"model": MODEL, "messages": [{"role": "user", "content": message}], "stream": True}
    else:
        body = {"model": MODEL, "message": message}
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {urlsplit(base_url).netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def connect(
    base_url: str, receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the REST face; ``receive_buffer`` shrinks the socket's
    receive buffer, so a client that stops reading stalls the server quickly."""
    parts = urlsplit(base_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    return await asyncio.open_connection(sock=sock, limit=4096)
