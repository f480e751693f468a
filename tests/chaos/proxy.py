"""A small TCP proxy in front of a server, for faults the server itself cannot make.

``pass``: bytes go through. ``slow``: each chunk waits ``latency`` seconds each way. ``drop``: every
open connection is cut and new ones are closed at once (a reset). ``blackhole``: connections are
accepted and held, and nothing goes through either way (a partition: clients wait for their
timeouts). Modes change while connections are open.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import Any

from exporter.local.servers import LOOPBACK

CHUNK = 64 * 1024


class Mode(StrEnum):
    PASS = "pass"
    SLOW = "slow"
    DROP = "drop"
    BLACKHOLE = "blackhole"


class Proxy:
    """Listens on ``port`` (0: any free one) and forwards to ``target`` on the loopback."""

    def __init__(self, name: str, target: int, port: int = 0) -> None:
        self.name = name
        self.target = target
        self.port = port
        self.mode = Mode.PASS
        self.latency = 0.0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._open = asyncio.Event()
        self._open.set()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.set(Mode.DROP)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def set(self, mode: Mode, latency: float = 0.0) -> None:
        """Changes the mode; ``drop`` also cuts every open connection."""
        self.mode, self.latency = mode, latency
        if mode is Mode.BLACKHOLE:
            self._open.clear()
        else:
            self._open.set()
        if mode is Mode.DROP:
            for writer in list(self._writers):
                _abort(writer)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode is Mode.DROP:
            _abort(client_writer)
            return
        self._writers.add(client_writer)
        server_writer: asyncio.StreamWriter | None = None
        try:
            await self._open.wait()
            server_reader, server_writer = await asyncio.open_connection(LOOPBACK, self.target)
            self._writers.add(server_writer)
            await asyncio.gather(
                self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
            )
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cut connection, or the proxy stopping: the client sees the connection end
        finally:
            for writer in (client_writer, server_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    _abort(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while chunk := await reader.read(CHUNK):
                await self._open.wait()
                if self.mode is Mode.SLOW:
                    await asyncio.sleep(self.latency)
                writer.write(chunk)
                await writer.drain()
        finally:
            self._tasks.discard(task)
            _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()
