"""``exporter dlq``: dead letters (``<topic>.dlq``) listed, shown, and replayed to their source
topic once (see ``exporter.cli.replays`` for how "once" holds)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from exporter.adapters.mongo.client import Document, connect, database
from exporter.cli import kafka_io
from exporter.cli.replays import PUBLISHED, ReplayLog, letter_id
from exporter.cli.session import Session, bounded, read_input
from exporter.settings import Settings

REPLAY_HEADER = "x-replay-of"
MAX_VALUE_BYTES = 10 * 1024 * 1024
COLUMNS = ("letter", "key", "source", "reason", "replay")


def register(commands: Any) -> None:
    group = commands.add_parser("dlq", help="operators: dead letters").add_subparsers(
        dest="action", required=True
    )
    listing = group.add_parser("list", help="the dead letters of a topic, with why and from where")
    listing.add_argument("--topic", required=True, help="the source topic (or its .dlq)")
    listing.add_argument("-n", "--limit", type=bounded(1, 100_000), default=1000)
    listing.set_defaults(run=list_letters)
    show = group.add_parser("show", help="one dead letter: headers and value")
    show.add_argument("--topic", required=True)
    show.add_argument("--offset", required=True, type=address, help="PARTITION:OFFSET of the letter")
    show.set_defaults(run=show_letter)
    replay = group.add_parser("replay", help="re-publish letters to their source topic, signed, once each")
    replay.add_argument("--topic", required=True)
    replay.add_argument(
        "--offset", required=True, type=address, action="append", help="PARTITION:OFFSET; repeatable"
    )
    replay.add_argument(
        "-f", "--file", type=Path, help="a fixed value to send instead (one letter only); - for stdin"
    )
    replay.add_argument("--force", action="store_true", help="take over a replay left unconfirmed")
    replay.set_defaults(run=replay_letters)


def address(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()) or len(text) > 40:
        raise argparse.ArgumentTypeError(f"{text!r}: PARTITION:OFFSET expected, e.g. 0:42")
    return int(partition), int(offset)


@asynccontextmanager
async def replay_log(settings: Settings) -> AsyncIterator[ReplayLog]:
    client = connect(settings)
    try:
        db: AsyncDatabase[Document] = database(client, settings)
        yield ReplayLog(db)
    finally:
        await client.close()


def letter_view(record: Any, replay: Document | None = None) -> dict[str, Any]:
    headers = kafka_io.header_text(record.headers)
    source = (headers.get(f"x-dlq-source-{part}") for part in ("topic", "partition", "offset"))
    return {
        "letter": f"{record.partition}:{record.offset}",
        "timestamp": record.timestamp,
        "key": (record.key or b"").decode(errors="replace"),
        "source": "/".join(part or "?" for part in source),
        "reason": headers.get("x-dlq-reason"),
        "headers": headers,
        "valueBytes": len(record.value or b""),
        "replay": None if replay is None else {k: str(v) for k, v in replay.items() if k != "_id"},
    }


def list_letters(session: Session, args: argparse.Namespace) -> int:
    topic = kafka_io.registered(args.topic).dead_letter

    async def letters() -> list[dict[str, Any]]:
        records = await kafka_io.read_to_end(session.settings, topic, args.limit)
        async with replay_log(session.settings) as log:
            states = await log.states([letter_id(topic, r.partition, r.offset) for r in records])
        return [letter_view(r, states.get(letter_id(topic, r.partition, r.offset))) for r in records]

    session.show(asyncio.run(letters()), COLUMNS)
    return 0


def show_letter(session: Session, args: argparse.Namespace) -> int:
    topic = kafka_io.registered(args.topic).dead_letter
    record = asyncio.run(kafka_io.fetch(session.settings, topic, *args.offset))
    view = letter_view(record) | {"value": (record.value or b"").decode(errors="replace")}
    session.show(view)
    return 0


def replay_letters(session: Session, args: argparse.Namespace) -> int:
    source = kafka_io.registered(args.topic)
    if args.file is not None and len(args.offset) != 1:
        raise ValueError("--file replaces one letter's value: give exactly one --offset")
    fixed = read_input(args.file, MAX_VALUE_BYTES) if args.file is not None else None
    outcomes = asyncio.run(replay(session.settings, source.value, args.offset, fixed, force=args.force))
    session.show(outcomes, ("letter", "outcome", "to"))
    return 1 if any(outcome["outcome"] == "refused" for outcome in outcomes) else 0


async def replay(
    settings: Settings, source: str, offsets: list[tuple[int, int]], fixed: bytes | None, *, force: bool
) -> list[dict[str, str]]:
    """Each letter republished to ``source``, once (see ``ReplayLog``); ``fixed`` as the value
    when given. One outcome per letter: replayed, skipped (replayed before) or refused."""
    async with replay_log(settings) as log:
        return [await replay_one(settings, log, source, address, fixed, force=force) for address in offsets]


async def replay_one(
    settings: Settings,
    log: ReplayLog,
    source: str,
    address: tuple[int, int],
    fixed: bytes | None,
    *,
    force: bool,
) -> dict[str, str]:
    topic = f"{source}.dlq"
    record = await kafka_io.fetch(settings, topic, *address)
    letter = letter_id(topic, *address)
    value = fixed if fixed is not None else record.value or b""
    if not value:
        return {"letter": letter, "outcome": "refused", "to": "the letter kept no value: use --file"}
    if (earlier := await log.claim(letter, force=force)) is not None:
        if earlier["state"] != PUBLISHED:
            why = "an earlier replay is unconfirmed: check, then --force"
            return {"letter": letter, "outcome": "refused", "to": why}
        to = earlier.get("to") or {}
        where = f"{to.get('topic')}/{to.get('partition')}/{to.get('offset')}"
        return {"letter": letter, "outcome": "skipped", "to": f"already replayed to {where}"}
    sent = await kafka_io.publish(settings, source, value, record.key, replay_headers(record.headers, letter))
    await log.published(letter, source, sent.partition, sent.offset)
    return {"letter": letter, "outcome": "replayed", "to": f"{source}/{sent.partition}/{sent.offset}"}


def replay_headers(headers: list[tuple[str, bytes]] | None, letter: str) -> list[tuple[str, bytes]]:
    """The record's own headers (not the dead letter's ``x-dlq-*``), and which letter it replays."""
    own = [(name, raw) for name, raw in headers or () if not name.startswith(("x-dlq-", REPLAY_HEADER))]
    return [*own, (REPLAY_HEADER, letter.encode())]
