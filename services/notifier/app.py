"""The notifier as a FastStream application: a consumer group on ``export.completed``."""

from __future__ import annotations

from faststream import FastStream

from exporter.adapters.email import SmtpMailer
from exporter.adapters.kafka import subscriber_options
from exporter.contracts.events import ExportCompleted
from exporter.runtime import stream_service
from exporter.settings import Settings
from exporter.topics import Topic
from notifier.delivery import handle_export_completed

GROUP = "notifier"


def create_app(settings: Settings) -> FastStream:
    app, runtime = stream_service(settings, "Exporter notifier", relay=False)
    mailer = SmtpMailer(settings.smtp)

    @runtime.broker.subscriber(Topic.EXPORT_COMPLETED.value, **subscriber_options(GROUP))
    async def on_export_completed(event: ExportCompleted) -> None:
        await handle_export_completed(runtime, mailer, event)

    return app
