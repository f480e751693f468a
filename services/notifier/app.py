"""The notifier as a FastStream application: a batch consumer group on ``export.completed``, and a sweep."""

from __future__ import annotations

from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from exporter.adapters.chat.discord import DiscordSender
from exporter.adapters.chat.slack import SlackSender
from exporter.adapters.chat.telegram import TelegramSender
from exporter.adapters.email import SmtpMailer
from exporter.adapters.kafka import (
    describe_validation_error,
    publish_dead_letter,
    subscriber_options,
    undecoded,
)
from exporter.contracts.events import ExportCompleted
from exporter.notifications.sending import Sender
from exporter.runtime import Runtime, stream_service
from exporter.settings import Settings
from exporter.topics import Topic
from notifier.delivery import Notifier
from notifier.redaction import Redactor, notifier_secrets
from notifier.transfer import Transfers

GROUP = "notifier"
# Connections kept per chat medium. httpcore's pool walks every connection, and for each idle one
# every other, whenever a request starts or ends; the chat APIs limit a bot to far fewer
# messages a second than this many connections carry.
CHAT_CONNECTIONS = 16


def build_senders(settings: Settings) -> dict[str, Sender]:
    notifier = settings.notifier
    timeout, connections = notifier.http_timeout_seconds, min(notifier.concurrency, CHAT_CONNECTIONS)
    return {
        "email": SmtpMailer(settings.smtp),
        "slack": SlackSender(notifier.slack, timeout),
        "telegram": TelegramSender(notifier.telegram, timeout, connections),
        "discord": DiscordSender(notifier.discord, timeout, connections),
    }


def build_notifier(runtime: Runtime) -> Notifier:
    redactor = Redactor(notifier_secrets(runtime.settings))
    redactor.install()
    return Notifier(runtime, build_senders(runtime.settings), redactor)


def create_app(settings: Settings) -> FastStream:
    app, runtime = stream_service(settings, "Exporter notifier", relay=False, lag_groups=[GROUP])
    notifier = build_notifier(runtime)
    transfers = Transfers(runtime)

    @runtime.broker.subscriber(
        Topic.EXPORT_COMPLETED.value,
        batch=True,
        max_records=settings.notifier.batch_max_events,
        decoder=undecoded,
        **subscriber_options(GROUP),
    )
    async def on_export_completed(message: KafkaMessage) -> None:
        """Each record decoded alone: one that is not an event is dead-lettered, the others go on."""
        events = []
        for record in message.raw_message:
            try:
                events.append(ExportCompleted.model_validate_json(record.value))
            except ValidationError as error:
                await publish_dead_letter(runtime.broker, record, describe_validation_error(error))
        await notifier.on_export_completed(events)
        await transfers.on_export_completed(events)

    @app.after_startup
    async def start_sweeping() -> None:
        # The runtime cancels the sweep at shutdown before it closes MongoDB: the sweep then drains.
        runtime.spawn(notifier.run())
        runtime.spawn(transfers.run())

    return app
