"""``exporter topics publish|tail``: Kafka tooling that speaks the embedded broker, which
librdkafka clients (kcat, confluent-kafka) cannot (see the README)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from exporter.cli import kafka_io
from exporter.cli.session import Session, bounded, read_input

MAX_RECORD_BYTES = 10 * 1024 * 1024


def register(commands: Any) -> None:
    group = commands.add_parser("topics", help="operators: publish to and read topics").add_subparsers(
        dest="action", required=True
    )
    publish = group.add_parser("publish", help="publish records signed with the services' key")
    publish.add_argument("--topic", required=True, help="a registered topic (or its .dlq)")
    publish.add_argument(
        "-f", "--file", type=Path, default=Path("-"), help="the value; - (default) for stdin"
    )
    publish.add_argument("--key", help="the record key")
    publish.add_argument("--lines", action="store_true", help="one record per non-empty line (JSON Lines)")
    publish.add_argument("--header", action="append", default=[], type=header, help="NAME=VALUE; repeatable")
    publish.set_defaults(run=publish_records)
    tail = group.add_parser("tail", help="print a topic's records as JSON lines (committing nothing)")
    tail.add_argument("--topic", required=True)
    tail.add_argument("--from-beginning", action="store_true", help="from the first record, not the next")
    tail.add_argument("-n", "--limit", type=bounded(1, 1_000_000), help="stop after N records")
    tail.add_argument("--idle", type=bounded(0.5, 86_400, float), help="stop after this many quiet seconds")
    tail.set_defaults(run=tail_topic)


def header(text: str) -> tuple[str, bytes]:
    name, equals, value = text.partition("=")
    if not equals or not name or len(text) > 8192:
        raise argparse.ArgumentTypeError(f"{text[:50]!r}: NAME=VALUE expected")
    return name, value.encode()


def topic_name(name: str) -> str:
    """``name`` when the registry knows it (as a topic or its dead-letter topic)."""
    topic = kafka_io.registered(name)
    return topic.dead_letter if name.endswith(".dlq") else topic.value


def publish_records(session: Session, args: argparse.Namespace) -> int:
    topic = topic_name(args.topic)
    data = read_input(args.file, MAX_RECORD_BYTES)
    values = [line for line in data.splitlines() if line.strip()] if args.lines else [data]
    key = args.key.encode() if args.key is not None else None

    async def send() -> list[dict[str, Any]]:
        sent = []
        for value in values:
            meta = await kafka_io.publish(session.settings, topic, value, key, args.header)
            sent.append({"topic": topic, "partition": meta.partition, "offset": meta.offset})
        return sent

    session.show(asyncio.run(send()), ("topic", "partition", "offset"))
    return 0


def record_view(record: Any) -> dict[str, Any]:
    """A record as one JSON object: a JSON value as such, anything else as text."""
    raw = record.value or b""
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw.decode(errors="replace")
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": None if record.key is None else record.key.decode(errors="replace"),
        "headers": kafka_io.header_text(record.headers),
        "value": value,
    }


def tail_topic(session: Session, args: argparse.Namespace) -> int:
    """Always JSON lines on stdout, one per record as it arrives, to pipe into ``jq``."""
    topic = topic_name(args.topic)

    async def follow() -> None:
        seen = 0
        async with kafka_io.consumer(session.settings, topic, from_beginning=args.from_beginning) as reader:
            loop = asyncio.get_running_loop()
            last = loop.time()
            while args.limit is None or seen < args.limit:
                if args.idle is not None and loop.time() - last > args.idle:
                    return
                batch = await reader.getmany(timeout_ms=500)
                for record in sorted((r for rs in batch.values() for r in rs), key=lambda r: r.timestamp):
                    sys.stdout.write(json.dumps(record_view(record), ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                    seen += 1
                    last = loop.time()
                    if seen == args.limit:
                        return

    asyncio.run(follow())
    return 0
