"""The renderer as a FastStream application: a consumer group on ``export.requested``, whose
renders run beside it (see ``renderer.renders``)."""

from __future__ import annotations

from typing import cast

from aiokafka import AIOKafkaConsumer
from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage

from exporter.adapters.kafka import subscriber_options
from exporter.contracts.events import ExportRequested
from exporter.runtime import stream_service
from exporter.settings import Settings
from exporter.topics import Topic
from renderer.export_job import render_job, take
from renderer.renders import Renders

GROUP = "renderer"


def create_app(settings: Settings) -> FastStream:
    app, runtime = stream_service(settings, "Exporter renderer", relay=True, lag_groups=[GROUP])
    renders = Renders(settings.renderer.concurrent_renders)

    @app.after_startup
    async def start_renders() -> None:
        runtime.spawn(renders.run())

    options = subscriber_options(GROUP, settings.renderer.max_poll_interval_seconds)

    @runtime.broker.subscriber(Topic.EXPORT_REQUESTED.value, **options)
    async def on_export_requested(event: ExportRequested, message: KafkaMessage) -> None:
        consumer = cast("AIOKafkaConsumer", message.consumer)
        if renders.full:
            renders.hold(consumer)
            await message.nack()  # read again once a render ends
            return
        if (started_at := await take(runtime, event)) is not None:
            renders.start(render_job(runtime, event.data, started_at), name=f"render {event.data.job_id}")
            if renders.full:
                renders.hold(consumer)

    return app
