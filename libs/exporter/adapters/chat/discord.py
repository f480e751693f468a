"""Discord through webhooks over httpx: one message with an embed, small files in the same request.

A single request carries message and files, so there is no half-sent state to retry around.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from exporter.adapters.chat.http import HttpSender, json_body, post, response_failure
from exporter.contracts.notification import webhook_name
from exporter.notifications.layout import discord_payload
from exporter.notifications.sending import Delivered, Outgoing, permanent
from exporter.settings.notifier import DiscordSettings


class DiscordSender(HttpSender):
    def __init__(self, settings: DiscordSettings, timeout_seconds: float, connections: int) -> None:
        super().__init__(settings.attach_max_bytes, timeout_seconds, connections)
        self._settings = settings

    async def send(self, recipients: Sequence[str], message: Outgoing) -> Delivered:
        for recipient in recipients:
            await self._post(recipient, message)
        return Delivered(sent=list(recipients))

    async def _post(self, recipient: str, message: Outgoing) -> None:
        name = webhook_name(recipient) or recipient
        url = message.webhooks.get(name)
        if url is None:
            raise permanent(f"no Discord webhook named '{name}' is configured for the tenant")
        payload = discord_payload(message.notice, message.files)
        if message.attachments:
            files = [
                (f"files[{index}]", (attachment.name, attachment.data, attachment.content_type))
                for index, attachment in enumerate(message.attachments)
            ]
            request = {"data": {"payload_json": json.dumps(payload)}, "files": files}
        else:
            request = {"json": payload}
        response = await post(
            self._client, url.get_secret_value(), "discord webhook", params={"wait": "true"}, **request
        )
        if response.is_success:
            return
        body = json_body(response)
        retry_after = body.get("retry_after")
        raise response_failure(
            response,
            "discord webhook",
            str(body.get("message", "")),
            float(retry_after) if isinstance(retry_after, int | float) else None,
        )
