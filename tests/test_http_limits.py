"""Limits on the REST port that no client can get past: the size of a request head,
the time to send it, and the number of connections. The REST face is served as
``python -m server --with-rest`` serves it (``rest_shim.http_server``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import LocalShimStarter, StackFactory

MB = 1024 * 1024


def peak_rss_kib() -> int:
    """The process's peak resident memory (VmHWM); the REST face runs in it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


async def open_raw(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(base)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def send_huge_header(base: str, size: int) -> tuple[int, bytes]:
    """Sends a request to /livez with one header of ``size`` bytes, 64 KiB at a time;
    returns how much of it was written before the server stopped it, and its answer."""
    reader, writer = await open_raw(base)
    piece = b"a" * 65536
    sent = 0
    with contextlib.suppress(ConnectionError):
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < size:
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        writer.write(b"\r\n\r\n")
        await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        answer = b""
    writer.close()
    return sent, answer


async def test_a_32_mb_header_is_refused_and_memory_stays_bounded(
    make_stack: StackFactory, start_local_shim: LocalShimStarter
) -> None:
    stack = await make_stack()
    base = await start_local_shim(stack.server)
    before = peak_rss_kib()
    results = await asyncio.gather(*(send_huge_header(base, 32 * MB) for _ in range(8)))
    grown_mb = (peak_rss_kib() - before) / 1024
    for sent, answer in results:
        assert sent < 32 * MB  # the server closed the connection long before the end
        if answer:  # when the client could still read it
            assert answer.startswith(b"HTTP/1.1 431 ")
            body = json.loads(answer.partition(b"\r\n\r\n")[2])
            assert body["code"] == "headers_too_large"
    assert grown_mb < 64, f"peak memory grew by {grown_mb:.0f} MB"
    # The server still answers.
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/livez")).status_code == 200


async def test_headers_within_the_limit_pass(
    make_stack: StackFactory, start_local_shim: LocalShimStarter
) -> None:
    stack = await make_stack(max_header_bytes=65536)
    base = await start_local_shim(stack.server)
    async with httpx.AsyncClient(base_url=base) as client:
        ok = await client.get("/livez", headers={"Cookie": "c" * 40_000})
        assert ok.status_code == 200
        too_big = await client.get("/livez", headers={"Cookie": "c" * 70_000})
        assert too_big.status_code == 431
        assert too_big.json()["code"] == "headers_too_large"


@pytest.mark.parametrize("sent", [b"", b"GET /livez HTTP/1.1\r\nHost: x\r\n"])
async def test_an_unfinished_request_head_is_closed(
    make_stack: StackFactory, start_local_shim: LocalShimStarter, sent: bytes
) -> None:
    stack = await make_stack(request_head_timeout=0.3)
    base = await start_local_shim(stack.server)
    reader, writer = await open_raw(base)
    writer.write(sent)
    answer = await asyncio.wait_for(reader.read(), 10)  # the server closes it
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_a_kept_alive_connection_serves_several_requests(
    make_stack: StackFactory, start_local_shim: LocalShimStarter
) -> None:
    stack = await make_stack(request_head_timeout=0.3)
    base = await start_local_shim(stack.server)
    reader, writer = await open_raw(base)
    for _ in range(3):
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    writer.close()


async def test_connections_over_the_cap_are_refused(
    make_stack: StackFactory, start_local_shim: LocalShimStarter
) -> None:
    stack = await make_stack(max_connections=3)
    base = await start_local_shim(stack.server)
    held = [await open_raw(base) for _ in range(3)]
    reader, writer = await open_raw(base)
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"retry-after: 1" in answer.lower()
    writer.close()
    _, first = held.pop()
    first.close()
    await first.wait_closed()
    async with httpx.AsyncClient(base_url=base) as client:
        deadline = time.monotonic() + 10  # until the server has seen the close
        while (reply := await client.get("/livez")).status_code != 200:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
    assert reply.status_code == 200
    for _, w in held:
        w.close()
