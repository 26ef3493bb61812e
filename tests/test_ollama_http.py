"""The lean HTTP/1.1 client towards Ollama, against a scripted server on a real socket.

The emulator covers the service end to end; these cases are the ones a well-behaved
server rarely produces but a network does: a kept-alive connection closed just before
reuse, a body cut after some chunks, an answer that never comes, bytes that are not HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from ollama_emulator import refused_url
from server.ollama_http import HttpPool

Script = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request as the scripted server read it, and the means to answer it."""

    connection: int
    path: str
    body: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, body: bytes, status: int = 200) -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        await self.send(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


@dataclass
class ScriptedServer:
    """Answers the n-th request with ``scripts[n]`` (the last one repeats)."""

    scripts: list[Script]
    port: int = 0
    connections: int = 0
    requests: list[Exchange] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                length = next(
                    int(line.split(":", 1)[1])
                    for line in lines
                    if line.lower().startswith("content-length:")
                )
                body = await reader.readexactly(length)
                exchange = Exchange(number, lines[0].split()[1], body, reader, writer)
                self.requests.append(exchange)
                script = self.scripts[min(len(self.requests), len(self.scripts)) - 1]
                await script(exchange)
                if writer.is_closing():
                    return
        finally:
            writer.close()
            self.closed.set()


@asynccontextmanager
async def scripted(*scripts: Script) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(list(scripts))
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


async def echo(exchange: Exchange) -> None:
    await exchange.answer(b'{"echo":' + exchange.body + b"}")


async def post(pool: HttpPool, body: bytes = b'{"n":1}', read_timeout: float = 5.0) -> bytes:
    response = await pool.post("/api/chat", body, connect_timeout=5.0, read_timeout=read_timeout)
    return await response.aread()


async def test_answers_come_back_whole_on_one_kept_alive_connection() -> None:
    async with scripted(echo) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        answers = [await post(pool, b'{"n":%d}' % i) for i in range(3)]
        await pool.aclose()
    assert answers == [b'{"echo":{"n":%d}}' % i for i in range(3)]
    assert server.connections == 1
    assert [r.path for r in server.requests] == ["/api/chat"] * 3


async def test_an_expired_idle_connection_is_closed_not_reused() -> None:
    async with scripted(echo) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}", keepalive=0.0)
        await post(pool)
        await post(pool)
        await server.closed.wait()  # the first connection, closed by the client
        await pool.aclose()
    assert [r.connection for r in server.requests] == [1, 2]


async def test_a_path_prefix_in_the_base_url_is_kept() -> None:
    async with scripted(echo) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}/ollama/")
        await post(pool)
        await pool.aclose()
    assert server.requests[0].path == "/ollama/api/chat"


async def test_a_kept_alive_connection_closed_by_the_server_is_replaced_once() -> None:
    async def answer_then_hang_up(exchange: Exchange) -> None:
        await echo(exchange)
        exchange.writer.close()

    async with scripted(answer_then_hang_up, echo) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        await post(pool)
        await server.closed.wait()
        assert await post(pool, b'{"n":2}') == b'{"echo":{"n":2}}'
        await pool.aclose()
    assert [r.connection for r in server.requests] == [1, 2]


async def test_a_new_connection_closed_before_any_answer_is_an_error() -> None:
    async def hang_up(exchange: Exchange) -> None:
        exchange.writer.close()

    async with scripted(hang_up) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await post(pool)
        await pool.aclose()
    assert len(server.requests) == 1  # not replayed


async def test_chunks_arrive_in_order_and_a_cut_comes_after_them() -> None:
    sent = asyncio.Event()

    async def two_chunks_then_cut(exchange: Exchange) -> None:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        await exchange.send(head + b"6\r\nfirst\n\r\n")
        await exchange.send(b"7\r\nsecond\n\r\n")
        sent.set()
        exchange.writer.close()

    async with scripted(two_chunks_then_cut) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        response = await pool.post("/api/chat", b"{}", connect_timeout=5.0, read_timeout=5.0)
        received = b""
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            async for data in response.aiter_raw():
                received += data
        await pool.aclose()
    assert sent.is_set()
    assert received == b"first\nsecond\n"


async def test_a_silent_server_is_a_read_timeout_and_its_connection_is_dropped() -> None:
    async def never_answer(exchange: Exchange) -> None:
        assert await exchange.reader.read() == b""  # until the client hangs up

    async with scripted(never_answer) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        with pytest.raises(httpx.ReadTimeout, match=r"within 0\.05 s"):
            await post(pool, read_timeout=0.05)
        await server.closed.wait()
        await pool.aclose()


async def test_closing_a_response_early_closes_its_connection() -> None:
    async def unfinished(exchange: Exchange) -> None:
        await exchange.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nx\n\r\n")
        assert await exchange.reader.read() == b""  # until the client hangs up

    async with scripted(unfinished) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        response = await pool.post("/api/chat", b"{}", connect_timeout=5.0, read_timeout=5.0)
        async for _ in response.aiter_raw():
            break
        await response.aclose()
        await server.closed.wait()  # the server saw the connection go
        await pool.aclose()


async def test_a_body_delimited_by_the_end_of_the_connection_is_read_whole() -> None:
    async def close_delimited(exchange: Exchange) -> None:
        await exchange.send(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"a":')
        await exchange.send(b"1}")
        exchange.writer.close()

    async with scripted(close_delimited, echo) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        assert await post(pool) == b'{"a":1}'
        assert await post(pool, b'{"n":2}') == b'{"echo":{"n":2}}'
        await pool.aclose()
    assert server.connections == 2


async def test_bytes_that_are_not_http_are_a_protocol_error() -> None:
    async def garbage(exchange: Exchange) -> None:
        await exchange.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    async with scripted(garbage) as server:
        pool = HttpPool(f"http://127.0.0.1:{server.port}")
        with pytest.raises(httpx.RemoteProtocolError, match="invalid HTTP answer"):
            await post(pool)
        await pool.aclose()


async def test_a_refused_connection_names_the_address() -> None:
    pool = HttpPool(refused_url())
    with pytest.raises(httpx.ConnectError, match=r"cannot connect to 127\.0\.0\.1"):
        await post(pool)
    await pool.aclose()
