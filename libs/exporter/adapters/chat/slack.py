"""Slack through slack-sdk: a bot token for channel ids, incoming webhooks for ``webhook:NAME``.

With the bot, a message without files is one ``chat.postMessage``; with small files it is one
``files_upload_v2`` (``files.getUploadURLExternal``, the upload, ``files.completeUploadExternal``)
whose ``initial_comment`` is the message, so text and files arrive as one post and a retry never
repeats half of it. Webhooks cannot carry files: their messages have the links.

slack-sdk's async client needs aiohttp, which this project does not ship; its urllib client runs
in a small thread pool instead, so a slow Slack holds a thread, never the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient, WebhookResponse

from exporter.contracts.notification import webhook_name
from exporter.notifications.layout import slack_text
from exporter.notifications.sending import (
    Delivered,
    DeliveryFailure,
    Outgoing,
    http_failure,
    parse_retry_after,
    permanent,
    transient,
)
from exporter.settings.notifier import SlackSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
# Errors Slack answers with HTTP 200 and ``ok: false`` that pass if tried again later.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(str(value) if value is not None else None)


def api_failure(error: SlackApiError, what: str) -> DeliveryFailure:
    response = error.response
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error", "unknown_error"))
    retry_after = _retry_after(response.headers)
    if response.status_code != 200:
        return http_failure(response.status_code, f"{what}: {code}", retry_after)
    if code in TRANSIENT_ERRORS:
        return transient(f"{what}: {code}", retry_after)
    return permanent(f"{what}: {code}")


def webhook_failure(response: WebhookResponse) -> DeliveryFailure:
    return http_failure(
        response.status_code,
        f"slack webhook: {response.body or 'no reason given'}",
        _retry_after(response.headers),
    )


class SlackSender:
    one_transaction = False

    def __init__(self, settings: SlackSettings, timeout_seconds: float, threads: int = 8) -> None:
        self._settings = settings
        self._timeout = max(int(timeout_seconds), 1)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="slack")
        # Retries are the notifier's (with the delivery's state recorded), never the SDK's.
        self._bot = (
            WebClient(
                token=settings.bot_token.get_secret_value(),
                base_url=settings.base_url,
                timeout=self._timeout,
                retry_handlers=[],
            )
            if settings.bot_token
            else None
        )

    def attach_limit(self, recipient: str) -> int:
        return 0 if webhook_name(recipient) is not None else self._settings.attach_max_bytes

    def encoded_size(self, size: int) -> int:
        return size

    async def _run(self, call: Callable[[], T], what: str) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except SlackApiError as error:
            raise api_failure(error, what) from error
        except (SlackRequestError, urllib.error.URLError, OSError) as error:
            # No answer from Slack (or the file upload, step 2, was refused: nothing posted yet).
            # The library's text may name hosts on the way: the log keeps it, not the job.
            log.warning("%s: %s: %s", what, type(error).__name__, error)
            raise transient(f"{what}: could not connect ({type(error).__name__})") from error

    async def send(self, recipients: Sequence[str], message: Outgoing) -> Delivered:
        text = slack_text(message.notice, message.files)
        for recipient in recipients:
            name = webhook_name(recipient)
            if name is not None:
                await self._webhook(name, text, message)
            else:
                await self._post(recipient, text, message)
        return Delivered(sent=list(recipients))

    async def _webhook(self, name: str, text: str, message: Outgoing) -> None:
        url = message.webhooks.get(name)
        if url is None:
            raise permanent(f"no Slack webhook named '{name}' is configured for the tenant")
        client = WebhookClient(url.get_secret_value(), timeout=self._timeout, retry_handlers=[])
        response = await self._run(
            lambda: client.send(text=text, unfurl_links=False, unfurl_media=False), "slack webhook"
        )
        if response.status_code != 200:
            raise webhook_failure(response)

    async def _post(self, channel: str, text: str, message: Outgoing) -> None:
        bot = self._bot
        if bot is None:
            raise permanent("Slack channels need a bot token, and none is configured")
        if not message.attachments:
            await self._run(
                lambda: bot.chat_postMessage(channel=channel, text=text, mrkdwn=True, unfurl_links=False),
                "slack chat.postMessage",
            )
            return
        uploads = [
            {"file": attachment.data, "filename": attachment.name, "title": attachment.name}
            for attachment in message.attachments
        ]
        await self._run(
            lambda: bot.files_upload_v2(file_uploads=uploads, channel=channel, initial_comment=text),
            "slack files_upload_v2",
        )

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
