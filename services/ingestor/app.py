"""The ingestor as a FastStream application: upstream measurements into the store."""

from __future__ import annotations

import logging

from faststream import FastStream

from exporter.adapters.kafka import subscriber_options
from exporter.contracts.events import MeasurementsPublished
from exporter.runtime import stream_service
from exporter.settings import Settings
from exporter.topics import Topic

GROUP = "ingestor"
log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastStream:
    app, runtime = stream_service(settings, "Exporter ingestor", relay=False)

    @runtime.broker.subscriber(Topic.MEASUREMENTS.value, **subscriber_options(GROUP))
    async def on_measurements(event: MeasurementsPublished) -> None:
        stored = await runtime.measurements.add_many(event.tenant, event.data.records)
        log.debug("stored %d of %d records from %s", stored, len(event.data.records), event.id)

    return app
