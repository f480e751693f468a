"""The chaos harness's TCP proxy in front of a real echo server: each mode does what faults need."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from exporter.local.servers import LOOPBACK
from tests.chaos.proxy import Mode, Proxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    server = await asyncio.start_server(_echo, LOOPBACK, 0)
    running = Proxy("echo", server.sockets[0].getsockname()[1])
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
        server.close()


async def roundtrip(proxy: Proxy, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
    try:
        writer.write(payload)
        await writer.drain()
        return await reader.read(1024)
    finally:
        writer.close()


async def cut(reader: asyncio.StreamReader) -> bool:
    """Whether the connection ended (closed or reset) without data."""
    try:
        return await reader.read(1024) == b""
    except ConnectionResetError:
        return True


async def test_pass_and_slow_go_through(proxy: Proxy) -> None:
    assert await roundtrip(proxy) == b"ping"
    proxy.set(Mode.SLOW, 0.01)
    assert await roundtrip(proxy, b"slow") == b"slow"


async def test_drop_cuts_open_connections_and_refuses_new_ones(proxy: Proxy) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
    writer.write(b"one")
    assert await reader.read(1024) == b"one"
    proxy.set(Mode.DROP)
    assert await cut(reader)  # the open connection ended
    writer.close()
    reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
    assert await cut(reader)  # and a new one is closed at once
    writer.close()
    proxy.set(Mode.PASS)
    assert await roundtrip(proxy) == b"ping"


async def test_a_black_hole_holds_bytes_until_it_lifts(proxy: Proxy) -> None:
    proxy.set(Mode.BLACKHOLE)
    answer = asyncio.create_task(roundtrip(proxy))
    done, _ = await asyncio.wait({answer}, timeout=0.5)
    assert not done  # nothing came back while the partition lasted
    proxy.set(Mode.PASS)
    assert await answer == b"ping"
