"""Telegram through the Bot API over httpx: ``sendMessage``, then ``sendDocument`` for small files.

The message goes first and carries every link, so it is the delivery; a document that fails
afterwards is reported as a note and not retried, which would post the message again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.adapters.chat.http import HttpSender, json_body, post, response_failure
from exporter.notifications.layout import plain_text
from exporter.notifications.sending import Delivered, DeliveryFailure, Outgoing, permanent
from exporter.settings.notifier import TelegramSettings

MESSAGE_LIMIT = 4_096


class TelegramSender(HttpSender):
    def __init__(self, settings: TelegramSettings, timeout_seconds: float, connections: int) -> None:
        super().__init__(settings.attach_max_bytes, timeout_seconds, connections)
        self._settings = settings

    async def _call(self, method: str, **request: Any) -> None:
        token = self._settings.bot_token
        if token is None:
            raise permanent("Telegram needs a bot token, and none is configured")
        url = f"{self._settings.base_url.rstrip('/')}/bot{token.get_secret_value()}/{method}"
        response = await post(self._client, url, f"telegram {method}", **request)
        body = json_body(response)
        if response.is_success and body.get("ok"):
            return
        parameters = body.get("parameters") or {}
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise response_failure(
            response,
            f"telegram {method}",
            str(body.get("description", "")),
            float(retry_after) if isinstance(retry_after, int | float) else None,
        )

    async def send(self, recipients: Sequence[str], message: Outgoing) -> Delivered:
        notes: list[str] = []
        text = plain_text(message.notice, message.files, limit=MESSAGE_LIMIT)
        for chat in recipients:
            await self._call(
                "sendMessage",
                json={"chat_id": chat, "text": text, "link_preview_options": {"is_disabled": True}},
            )
            for attachment in message.attachments:
                try:
                    await self._call(
                        "sendDocument",
                        data={"chat_id": chat},
                        files={"document": (attachment.name, attachment.data, attachment.content_type)},
                    )
                except DeliveryFailure as failure:
                    notes.append(f"{attachment.name} not sent as a document ({failure.reason}); the link was")
        return Delivered(sent=list(recipients), notes=notes)
