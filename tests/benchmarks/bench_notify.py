"""The notifier end to end: finished jobs announced on Kafka → emails and chat messages delivered.

Starts the embedded local servers (Kafka, S3, MongoDB, the SMTP sink) in a temporary folder and a
local HTTP server answering like Slack, Telegram and Discord; runs the real ``python -m notifier``
against them; records ``JOBS`` finished jobs with two messages each (an email and a chat message,
Slack/Telegram/Discord in turn, each with the job's small CSV attached), publishes their
``export.completed`` events, and waits until every delivery is recorded. Prints notifications
delivered per second and the delay from each event to its delivery (p50/p99), the last line
against the target.

    python -m tests.benchmarks.bench_notify [jobs]
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from exporter.adapters.kafka import client_options
from exporter.adapters.mongo.client import JOBS
from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.base import utcnow
from exporter.contracts.job import JobFile, JobResult, JobSpec
from exporter.domain.job_life import JobStatus
from exporter.domain.jobs import pending_deliveries
from exporter.local.servers import LocalServers
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.signing import own_producer
from exporter.topics import Topic
from tests.integration.notifier_support import (
    TELEGRAM_TOKEN,
    ChatReceiver,
    NotifierProcess,
    completed_event,
    notifier_settings,
)
from tests.notify_cases import job_spec

JOBS_DEFAULT = 1_000
WARMUP_JOBS = 3
TARGET_PER_SECOND = 200
CHATS = [
    {"medium": "slack", "recipients": ["C0BENCH001"]},
    {"medium": "telegram", "recipients": ["-100200300"]},
    {"medium": "discord", "recipients": ["webhook:ops"]},
]
CSV = b"time,value\n" + b"".join(b"2026-01-01T00:%02d:00Z,%d.0\n" % (m, 20 + m) for m in range(60))
OPEN = ["pending", "sending", "retrying"]


def messages(index: int) -> list[dict[str, Any]]:
    email = {
        "policy": "onSuccess",
        "medium": "email",
        "title": "${export.name} is ready",
        "text": "${job.rows} rows: ${download.url}",
        "recipients": ["ops@example.com"],
    }
    return [
        email,
        {"policy": "always", "title": "${export.name}: ${job.status}", **CHATS[index % len(CHATS)]},
    ]


async def record_jobs(
    runtime: Runtime, count: int, prefix: str, csv: Path
) -> list[tuple[JobSpec, JobResult]]:
    """``count`` jobs that finished with the small CSV file ``csv`` (shared, uploaded once)."""
    key = f"bench/{prefix}/data.csv"
    stored = await runtime.storage.upload_file(key, csv, "text/csv")
    job_file = JobFile(
        key=key, name="data.csv", size_in_bytes=stored.size, rows=60, checksum="-", content_type="text/csv"
    )
    jobs = []
    for index in range(count):
        spec = job_spec(messages(index), job_id=f"{prefix}-{index:05d}")
        now = utcnow()
        result = JobResult(
            status=JobStatus.DONE,
            bucket=runtime.storage.bucket,
            files=[job_file],
            row_count=60,
            size_in_bytes=stored.size,
            started_at=now,
            completed_at=now,
        )
        document = new_job_document(spec, pending_deliveries(spec.request))
        document.update(result.to_document())
        jobs.append((spec, result, document))
    await runtime.db[JOBS].insert_many([document for _, _, document in jobs])
    return [(spec, result) for spec, result, _ in jobs]


async def announce(settings: Settings, jobs: list[tuple[JobSpec, JobResult]]) -> dict[str, datetime]:
    """Publishes each job's ``export.completed``; returns each event's time."""
    producer = AIOKafkaProducer(**client_options(settings.kafka), linger_ms=5)
    await producer.start()
    times: dict[str, datetime] = {}
    signer, topic = own_producer(settings.kafka), Topic.EXPORT_COMPLETED.value
    try:
        sends = []
        for spec, result in jobs:
            event = completed_event(spec, result)
            times[spec.job_id] = event.time
            payload = json.dumps(event.to_wire()).encode()
            signed = signer.raw_headers(topic, payload)
            sends.append(await producer.send(topic, payload, key=spec.job_id.encode(), headers=signed))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return times


# The request that completes each chat delivery, as the local receiver sees it.
CHAT_DELIVERED = {
    "/api/files.completeUploadExternal",
    f"/bot{TELEGRAM_TOKEN}/sendMessage",
    "/webhooks/discord-ops",
}


@dataclass
class Arrivals:
    """What reached the local servers: emails in the sink's folder, chat messages at the receiver.

    Counted cheaply, as it is watched while the notifier works on the same cores: the folder
    listed without pattern matching, the chat requests only those new since the last count.
    """

    maildir: Path
    chat: ChatReceiver
    _chat_seen: int = 0
    _chat_delivered: int = 0

    def count(self) -> int:
        new = self.chat.received[self._chat_seen :]  # the receiver's thread appends meanwhile
        self._chat_seen += len(new)
        self._chat_delivered += sum(1 for r in new if r.path in CHAT_DELIVERED)
        with os.scandir(self.maildir) as entries:
            emails = sum(1 for entry in entries if entry.name.endswith(".eml"))
        return emails + self._chat_delivered


async def wait_until_delivered(runtime: Runtime, arrivals: Arrivals, expected: int, prefix: str) -> None:
    """Until ``expected`` messages arrived (cheap to watch), then until each result is recorded.

    The job documents are queried only at the end: counting over them loads MongoDB, which the
    notifier is using.
    """
    deadline = time.monotonic() + 600
    while arrivals.count() < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arrivals.count()} of {expected} notifications arrived in 600 s")
        await asyncio.sleep(0.1)
    query = {"_id": {"$regex": f"^{prefix}-"}, "notifications.status": {"$in": OPEN}}
    while await runtime.db[JOBS].count_documents(query):
        await asyncio.sleep(0.2)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(settings: Settings, count: int, arrivals: Arrivals, csv: Path) -> list[str]:
    runtime = Runtime.build(settings)
    await runtime.prepare()
    notifier = NotifierProcess(settings, arrivals.maildir.parent / "notifier.log")
    try:
        await notifier.start()
        # Warm-up: the consumer joins its group and every connection is made before the clock runs.
        await announce(settings, await record_jobs(runtime, WARMUP_JOBS, "warmup", csv))
        await wait_until_delivered(runtime, arrivals, 2 * WARMUP_JOBS, "warmup")

        jobs = await record_jobs(runtime, count, "bench", csv)
        started = datetime.now(UTC)
        event_times = await announce(settings, jobs)
        await wait_until_delivered(runtime, arrivals, 2 * (WARMUP_JOBS + count), "bench")

        cursor = runtime.db[JOBS].find({"_id": {"$regex": "^bench-"}}, {"notifications": 1})
        delays: list[float] = []
        statuses: dict[str, int] = {}
        last = started
        async for job in cursor:
            for entry in job["notifications"]:
                statuses[entry["status"]] = statuses.get(entry["status"], 0) + 1
                if entry["status"] == "sent":
                    sent_at = entry["sentAt"].replace(tzinfo=UTC)
                    delays.append((sent_at - event_times[job["_id"]]).total_seconds())
                    last = max(last, sent_at)
    finally:
        notifier.stop()
        await runtime.close()
    elapsed = (last - started).total_seconds()
    rate = len(delays) / elapsed if elapsed > 0 else 0.0
    p50, p99 = percentile(delays, 0.50), percentile(delays, 0.99)
    verdict = "meets" if rate >= TARGET_PER_SECOND and statuses.get("sent") == 2 * count else "misses"
    return [
        f"jobs: {count}, notifications: {2 * count} (email + slack/telegram/discord, each with a file)",
        f"outcomes: {json.dumps(statuses, sort_keys=True)}",
        f"delivered: {len(delays)} in {elapsed:.2f} s = {rate:.0f} notifications/s",
        f"delay export.completed → delivery: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"mean {statistics.fmean(delays) * 1000:.0f} ms",
        f"bench-notify: {rate:.0f} notifications/s {verdict} the target of ≥ {TARGET_PER_SECOND}/s "
        f"(p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms from export.completed to delivery)",
    ]


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else JOBS_DEFAULT
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as folder:
        run_dir = Path(folder)
        csv = run_dir / "data.csv"
        csv.write_bytes(CSV)
        servers = LocalServers(LocalServers.test_settings(run_dir))
        chat = ChatReceiver()
        servers.start()
        try:
            settings = notifier_settings(
                servers.settings,
                chat,
                max_attempts=6,
                backoff_initial_seconds=0.5,
                sweep_interval_seconds=15.0,
            )
            arrivals = Arrivals(servers.maildir, chat)
            for line in asyncio.run(measure(settings, count, arrivals, csv)):
                print(line, flush=True)
        finally:
            chat.stop()
            servers.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
