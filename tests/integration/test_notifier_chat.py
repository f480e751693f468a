"""Slack, Telegram and Discord notifications against a local HTTP server that answers like them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from exporter.contracts.job import Delivery
from exporter.runtime import Runtime
from notifier.redaction import Redactor, notifier_secrets
from tests.integration.notifier_support import (
    SLACK_TOKEN,
    TELEGRAM_TOKEN,
    ChatReceiver,
    Received,
    chat_receiver,
    completed_event,
    deliveries,
    finished_job,
    json_reply,
    make_notifier,
    notifier_settings,
)

chat = pytest.fixture(scope="module")(chat_receiver)
TELEGRAM = f"/bot{TELEGRAM_TOKEN}"
SMALL = b"time,value\n2026-01-01T00:00:00Z,20.0\n"


async def notify(
    runtime: Runtime,
    chat: ChatReceiver,
    tmp_path: Path,
    messages: list[dict[str, Any]],
    files: dict[str, bytes] | None = None,
    **notifier: Any,
) -> list[Delivery]:
    """One finished job with ``messages``, notified; its deliveries once all are final."""
    spec, result = await finished_job(runtime, messages, tmp_path, files=files)
    notifier_ = make_notifier(runtime, notifier_settings(runtime.settings, chat, **notifier))
    await notifier_.on_export_completed([completed_event(spec, result)])
    return await deliveries(runtime, spec.job_id)


def form_text(received: Received, name: str) -> str:
    return received.form.get(name) or received.query[name]


async def test_slack_bot_posts_a_message_and_uploads_small_files_with_it(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    message = {"medium": "slack", "title": "${export.name} <!channel>", "recipients": ["C0AAAAAAA1"]}
    files = {"small.csv": SMALL, "big.csv": b"x" * 2000}
    slack = {"base_url": chat.slack_api, "bot_token": SLACK_TOKEN, "attach_max_bytes": 1000}
    uploads_before = len(chat.calls("/api/files.completeUploadExternal"))

    [entry] = await notify(runtime, chat, tmp_path, [message], files, slack=slack)

    assert (entry.status, entry.attempts, entry.sent_to) == ("sent", 1, ["C0AAAAAAA1"])
    # The three calls of files_upload_v2; the message is the upload's comment, in the same post.
    [get_url] = [
        c for c in chat.calls("/api/files.getUploadURLExternal") if form_text(c, "filename") == "small.csv"
    ]
    assert form_text(get_url, "length") == str(len(SMALL))
    assert get_url.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert len([c for c in chat.received if c.path.startswith("/upload/") and c.data == SMALL]) == 1
    complete = chat.calls("/api/files.completeUploadExternal")[uploads_before]
    assert form_text(complete, "channel_id") == "C0AAAAAAA1"
    assert [f["title"] for f in json.loads(form_text(complete, "files"))] == ["small.csv"]
    comment = form_text(complete, "initial_comment")
    assert comment.startswith("*Plant temperatures &lt;!channel&gt;*\n")
    assert "|small.csv> (37 B), attached" in comment
    assert "|big.csv> (2.0 kB), too large to attach here (limit 1.0 kB): download it with the link" in comment
    assert not [c for c in chat.calls("/api/chat.postMessage") if c.json["channel"] == "C0AAAAAAA1"]


async def test_slack_without_files_is_one_chat_post(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    message = {"medium": "slack", "text": "rows: ${job.rows}", "recipients": ["C0BBBBBBB2"]}

    [entry] = await notify(runtime, chat, tmp_path, [message])

    assert entry.status == "sent"
    [post] = [c for c in chat.calls("/api/chat.postMessage") if c.json["channel"] == "C0BBBBBBB2"]
    assert post.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert post.json["text"].startswith("*Export Plant temperatures: done*\nrows: 0\n")
    assert post.json["unfurl_links"] is False


async def test_a_slack_webhook_gets_the_link_never_the_file(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    before = len(chat.calls("/webhooks/slack-ops"))

    [entry] = await notify(
        runtime, chat, tmp_path, [{"medium": "slack", "recipients": ["webhook:ops"]}], {"small.csv": SMALL}
    )

    assert entry.status == "sent"
    [hook] = chat.calls("/webhooks/slack-ops")[before:]
    assert hook.json["text"].startswith("*Export Plant temperatures: done*")
    assert "|small.csv> (37 B), download it with the link" in hook.json["text"]


async def test_telegram_sends_the_message_then_the_small_file(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    message = {
        "medium": "telegram",
        "title": "Done",
        "text": "Window ${job.window.from} ${nope.field}",
        "recipients": ["-1001"],
    }
    before = len(chat.calls(f"{TELEGRAM}/sendDocument"))

    [entry] = await notify(runtime, chat, tmp_path, [message], {"small.csv": SMALL})

    assert (entry.status, entry.sent_to) == ("sent", ["-1001"])
    assert entry.detail == "unknown placeholders left as written: ${nope.field}"
    assert "unknown placeholders left as written: ${nope.field}" in caplog.text
    [sent] = [c for c in chat.calls(f"{TELEGRAM}/sendMessage") if c.json["chat_id"] == "-1001"]
    assert sent.json["text"].startswith("Window 2026-01-01T00:00:00Z ${nope.field}\n\nExport: Plant")
    assert sent.json["link_preview_options"] == {"is_disabled": True}
    document = chat.calls(f"{TELEGRAM}/sendDocument")[before]
    assert document.form["chat_id"] == "-1001"
    assert document.files["document"] == ("small.csv", SMALL)


async def test_discord_posts_an_embed_with_the_file_in_the_same_request(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    messages = [
        {"medium": "discord", "title": "@everyone ${export.name}", "recipients": ["webhook:dev"]},
    ]
    before = len(chat.calls("/webhooks/discord-dev"))

    [entry] = await notify(runtime, chat, tmp_path, messages, {"small.csv": SMALL})

    assert (entry.status, entry.attempts) == ("sent", 1)
    [post] = chat.calls("/webhooks/discord-dev")[before:]
    assert post.query == {"wait": "true"}
    payload = json.loads(post.form["payload_json"])
    assert payload["allowed_mentions"] == {"parse": []}
    [embed] = payload["embeds"]
    assert embed["title"] == "@everyone Plant temperatures"
    assert {"name": "Rows", "value": "1", "inline": True} in embed["fields"]
    assert "small.csv" in embed["description"]
    assert post.files["files[0]"] == ("small.csv", SMALL)


RATE_LIMITS = {
    "slack": (
        "/api/chat.postMessage",
        {"recipients": ["C0CCCCCCC3"]},
        json_reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"}),
    ),
    "telegram": (
        f"{TELEGRAM}/sendMessage",
        {"recipients": ["-1003"]},
        json_reply(
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests",
                "parameters": {"retry_after": 1},
            },
            429,
        ),
    ),
    "discord": (
        "/webhooks/discord-ops",
        {"recipients": ["webhook:ops"]},
        json_reply({"message": "You are being rate limited.", "retry_after": 1.0}, 429, {"Retry-After": "1"}),
    ),
}


@pytest.mark.parametrize("medium", sorted(RATE_LIMITS))
async def test_a_429_is_retried_no_sooner_than_retry_after(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, medium: str
) -> None:
    path, recipients, limited = RATE_LIMITS[medium]
    before = len(chat.calls(path))
    chat.then(path, lambda _: limited)

    [entry] = await notify(runtime, chat, tmp_path, [{"medium": medium, **recipients}])

    assert (entry.status, entry.attempts, entry.last_error) == ("sent", 2, None)
    first, second = chat.calls(path)[before:]
    # Backoff alone would be 0.05 s; the server asked for a second.
    assert second.at - first.at >= 1.0


async def test_a_permanent_failure_fails_at_once_with_the_reason(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    chat.then(
        f"{TELEGRAM}/sendMessage",
        lambda _: json_reply(
            {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, 400
        ),
    )
    messages = [
        {"medium": "telegram", "recipients": ["-1004"]},
        {"medium": "discord", "recipients": ["webhook:gone"]},
        {"medium": "slack", "recipients": ["C0DDDDDDD4"]},
    ]
    chat.then("/api/chat.postMessage", lambda _: json_reply({"ok": False, "error": "channel_not_found"}))

    telegram, discord, slack = await notify(runtime, chat, tmp_path, messages)

    assert (telegram.status, telegram.attempts) == ("failed", 1)
    assert telegram.last_error == "-1004: HTTP 400: telegram sendMessage: Bad Request: chat not found"
    assert (discord.status, discord.last_error) == (
        "failed",
        "webhook:gone: no Discord webhook named 'gone' is configured for tenant default",
    )
    assert (slack.status, slack.last_error) == (
        "failed",
        "C0DDDDDDD4: slack chat.postMessage: channel_not_found",
    )


async def test_server_errors_are_retried_up_to_the_bound_then_recorded(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    unavailable = json_reply({"message": "upstream down"}, 503)
    chat.then("/webhooks/discord-ops", *[lambda _: unavailable] * 3)

    [entry] = await notify(runtime, chat, tmp_path, [{"medium": "discord", "recipients": ["webhook:ops"]}])

    assert (entry.status, entry.attempts) == ("failed", 3)
    assert entry.last_error == (
        "webhook:ops: HTTP 503: discord webhook: upstream down (gave up after 3 attempts)"
    )


async def test_one_unreachable_chat_does_not_keep_the_others_from_getting_it(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    chat.then(f"{TELEGRAM}/sendMessage", lambda _: json_reply({"ok": False, "description": "busy"}, 502))
    message = {"medium": "telegram", "recipients": ["-1005", "-1006"]}

    [entry] = await notify(runtime, chat, tmp_path, [message])

    assert (entry.status, entry.attempts) == ("sent", 2)
    assert sorted(entry.sent_to) == ["-1005", "-1006"]
    sends = [
        c.json["chat_id"]
        for c in chat.calls(f"{TELEGRAM}/sendMessage")
        if c.json["chat_id"] in {"-1005", "-1006"}
    ]
    assert sorted(sends) == ["-1005", "-1005", "-1006"]  # only the failed one went again


async def test_bot_token_stays_out_of_logs_and_job(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = notifier_settings(runtime.settings, chat)
    caplog.handler.addFilter(Redactor(notifier_secrets(settings)))
    chat.then(
        f"{TELEGRAM}/sendMessage", lambda _: json_reply({"ok": False, "description": "Unauthorized"}, 401)
    )
    caplog.set_level(logging.INFO)
    # The services hold httpx below WARNING (exporter.log_context); a process that lets its URL
    # lines through must still see the token masked.
    caplog.set_level(logging.INFO, logger="httpx")
    spec, result = await finished_job(runtime, [{"medium": "telegram", "recipients": ["-1007"]}], tmp_path)

    await make_notifier(runtime, settings).on_export_completed([completed_event(spec, result)])
    [entry] = await deliveries(runtime, spec.job_id)

    assert entry.status == "failed"
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text  # httpx logs each URL...
    assert "/bot***/sendMessage" in caplog.text
    assert TELEGRAM_TOKEN not in caplog.text  # ...never with the token
    assert TELEGRAM_TOKEN not in str(await runtime.jobs.get(spec.job_id))
