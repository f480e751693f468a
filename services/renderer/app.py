"""The renderer as a FastStream application: a consumer group on ``export.requested``."""

from __future__ import annotations

from faststream import FastStream

from exporter.adapters.kafka import subscriber_options
from exporter.contracts.events import ExportRequested
from exporter.runtime import stream_service
from exporter.settings import Settings
from exporter.topics import Topic
from renderer.export_job import handle_export_requested

GROUP = "renderer"


def create_app(settings: Settings) -> FastStream:
    app, runtime = stream_service(settings, "Exporter renderer", relay=True)

    @runtime.broker.subscriber(Topic.EXPORT_REQUESTED.value, **subscriber_options(GROUP))
    async def on_export_requested(event: ExportRequested) -> None:
        await handle_export_requested(runtime, event)

    return app
