"""Servers that accept connections and then never answer: a dead or stopped dependency as its
clients meet it (a SIGSTOPped store, a network that drops replies)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import bson

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
HANDSHAKES = {"hello", "ismaster", "isMaster"}
HEADER = struct.Struct("<iiii")


class HangingServer:
    """Accepts, reads, never writes; ``connections`` counts who came (to know a client waits)."""

    def __init__(self) -> None:
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await self.answer(reader, writer):
                pass

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Reads what comes and answers nothing; False once the client has gone."""
        return bool(await reader.read(65536))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HangingServer]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            # Closing the connections wakes whoever still waits on them.
            for writer in self._writers:
                writer.close()
            self._server.close()
            await self._server.wait_closed()


class HangingMongo(HangingServer):
    """A MongoDB-wire server that answers the handshake (so a client connects) and no command:
    a store that stopped mid-way."""

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            length, request_id, _, opcode = HEADER.unpack(await reader.readexactly(HEADER.size))
            body = await reader.readexactly(length - HEADER.size)
        except asyncio.IncompleteReadError:
            return False
        command = query_of(opcode, body)
        if next(iter(command)) in HANDSHAKES:
            writer.write(reply(opcode, request_id, handshake()))
            await writer.drain()
        return True


def query_of(opcode: int, body: bytes) -> dict[str, object]:
    if opcode == OP_MSG:  # flag bits, then a kind-0 section: the command
        return bson.decode(body[5 : 5 + struct.unpack_from("<i", body, 5)[0]])
    assert opcode == OP_QUERY, opcode  # flags, collection name, skip, limit, the command
    start = body.index(b"\0", 4) + 1 + 8
    return bson.decode(body[start : start + struct.unpack_from("<i", body, start)[0]])


def handshake() -> dict[str, object]:
    return {
        "ok": 1.0,
        "helloOk": True,
        "isWritablePrimary": True,
        "ismaster": True,
        "maxWireVersion": 21,
        "minWireVersion": 0,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": datetime.now(UTC),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": 1,
    }


def reply(opcode: int, request_id: int, document: dict[str, object]) -> bytes:
    encoded = bson.encode(document)
    if opcode == OP_MSG:
        body = struct.pack("<I", 0) + b"\0" + encoded
    else:  # OP_REPLY: flags, cursor id, starting from, number returned
        body = struct.pack("<iqii", 0, 0, 0, 1) + encoded
        opcode = OP_REPLY
    return HEADER.pack(HEADER.size + len(body), 0, request_id, opcode) + body
