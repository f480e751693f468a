"""The notifier as a real process on Kafka: killed mid-way, restarted, redelivered to; never twice;
not held up by a record that is no event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.contracts.job import JobResult, JobSpec
from exporter.local.demo import publish
from exporter.runtime import Runtime
from exporter.settings import Settings
from exporter.topics import Topic
from notifier.attempts import CUT_OFF
from tests.integration.notifier_support import (
    TELEGRAM_TOKEN,
    ChatReceiver,
    NotifierProcess,
    chat_receiver,
    completed_event,
    deliveries,
    entries_when,
    eventually,
    finished_job,
    json_reply,
    notifier_settings,
)
from tests.integration.test_messaging import read_topic

chat = pytest.fixture(scope="module")(chat_receiver)
SEND_MESSAGE = f"/bot{TELEGRAM_TOKEN}/sendMessage"


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[NotifierProcess]]:
    """Notifier processes a test starts; whatever still runs is stopped after it."""
    started: list[NotifierProcess] = []
    yield started
    for process in started:
        process.stop()


async def run_notifier(processes: list[NotifierProcess], settings: Settings, log: Path) -> NotifierProcess:
    process = NotifierProcess(settings, log)
    processes.append(process)
    await process.start()
    return process


async def announce(settings: Settings, spec: JobSpec, result: JobResult, key: str | None = None) -> None:
    """Publishes ``export.completed`` as the renderer's outbox does; ``key`` picks the partition."""
    payload: dict[str, Any] = completed_event(spec, result).to_wire()
    await publish(settings, Topic.EXPORT_COMPLETED.value, key or spec.job_id, payload)


def posts_about(chat: ChatReceiver, path: str, job_id: str) -> int:
    return sum(1 for c in chat.calls(path) if job_id in str(c.json))


async def test_killed_between_two_deliveries_the_next_notifier_finishes_without_duplicates(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, processes: list[NotifierProcess]
) -> None:
    settings = notifier_settings(runtime.settings, chat, backoff_initial_seconds=0.1)
    messages = [
        {"medium": "discord", "text": "${job.id}", "recipients": ["webhook:ops"]},
        {"medium": "telegram", "text": "${job.id}", "recipients": ["-2001"]},
    ]
    spec, result = await finished_job(runtime, messages, tmp_path)
    # Telegram is down for the first try and asks for 5 s: the notifier dies in that wait.
    chat.then(
        SEND_MESSAGE, lambda _: json_reply({"ok": False, "description": "down"}, 503, {"Retry-After": "5"})
    )
    first = await run_notifier(processes, settings, tmp_path / "notifier.log")

    await announce(settings, spec, result)
    await entries_when(
        runtime,
        spec.job_id,
        lambda e: [x.status for x in e] == ["sent", "retrying"],
        "one sent, one retrying",
    )
    first.kill()
    await run_notifier(processes, settings, tmp_path / "notifier.log")
    discord, telegram = await deliveries(runtime, spec.job_id)

    assert (discord.status, discord.attempts) == ("sent", 1)
    assert (telegram.status, telegram.attempts) == ("sent", 2)
    assert posts_about(chat, "/webhooks/discord-ops", spec.job_id) == 1
    assert posts_about(chat, SEND_MESSAGE, spec.job_id) == 2  # the 503, then the one that arrived

    # Kafka delivers the event again; a later event on the same partition shows it was handled.
    marker, marker_result = await finished_job(runtime, [messages[0]], tmp_path)
    await announce(settings, spec, result)
    await announce(settings, marker, marker_result, key=spec.job_id)
    await deliveries(runtime, marker.job_id)
    assert posts_about(chat, "/webhooks/discord-ops", marker.job_id) == 1
    assert posts_about(chat, "/webhooks/discord-ops", spec.job_id) == 1
    assert posts_about(chat, SEND_MESSAGE, spec.job_id) == 2


async def test_killed_mid_send_the_message_is_recorded_as_failed_not_sent_again(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, processes: list[NotifierProcess]
) -> None:
    settings = notifier_settings(runtime.settings, chat, sending_lease_seconds=2.0)
    spec, result = await finished_job(
        runtime, [{"medium": "discord", "text": "${job.id}", "recipients": ["webhook:dev"]}], tmp_path
    )
    gate = chat.hold("/webhooks/discord-dev")

    async def reached_discord() -> bool | None:
        return posts_about(chat, "/webhooks/discord-dev", spec.job_id) == 1 or None

    first = await run_notifier(processes, settings, tmp_path / "notifier.log")
    try:
        await announce(settings, spec, result)
        await entries_when(runtime, spec.job_id, lambda e: e[0].status == "sending", "the send")
        await eventually(reached_discord, "the post to reach Discord")
        first.kill()  # it reached Discord, and the notifier died before hearing back
    finally:
        gate.set()
    await run_notifier(processes, settings, tmp_path / "notifier.log")
    [entry] = await deliveries(runtime, spec.job_id)

    assert (entry.status, entry.attempts, entry.last_error) == ("failed", 1, CUT_OFF)
    assert posts_about(chat, "/webhooks/discord-dev", spec.job_id) == 1


async def test_a_record_that_is_no_event_is_dead_lettered_and_its_batch_goes_on(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, processes: list[NotifierProcess]
) -> None:
    settings = notifier_settings(runtime.settings, chat)
    spec, result = await finished_job(
        runtime, [{"medium": "discord", "text": "${job.id}", "recipients": ["webhook:ops"]}], tmp_path
    )
    # One key, one partition: the bad record and the event arrive together, the bad one first.
    await publish(settings, Topic.EXPORT_COMPLETED.value, spec.job_id, {"id": f"{spec.job_id}-bad"})
    await announce(settings, spec, result)

    await run_notifier(processes, settings, tmp_path / "notifier.log")
    [entry] = await deliveries(runtime, spec.job_id)
    [dead] = await read_topic(settings, Topic.EXPORT_COMPLETED.dead_letter, 1, f"{spec.job_id}-bad")

    assert (entry.status, posts_about(chat, "/webhooks/discord-ops", spec.job_id)) == ("sent", 1)
    headers = {key: value.decode() for key, value in dead.headers}
    assert headers["x-dlq-source-topic"] == Topic.EXPORT_COMPLETED.value
    assert "data: Field required" in headers["x-dlq-reason"]
