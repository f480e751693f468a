"""Keeps the grants collection in step with the IAM service.

The IAM service publishes each grant change on ``iam.policy-updated``, the topic it also reads
the request-api's announcements from. Grants are upstream facts like things and entities, so the
ingestor stores them, in a consumer group of its own, and the request-api only reads them (its
process then never reads back the announcements it publishes on every change). Grant changes are
stored newest version winning, so redelivery and reordering are harmless; our own announcements
are passed over; anything else goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker

from exporter.adapters.kafka import subscriber_options
from exporter.adapters.mongo.grants import GrantRepository
from exporter.contracts.events import GrantChanged, PolicyStreamEvent
from exporter.topics import Topic

log = logging.getLogger(__name__)


def follow_grants(broker: KafkaBroker, grants: GrantRepository, group_id: str) -> None:
    """Subscribes ``broker`` (before it starts) to the grant changes, in consumer group ``group_id``."""

    async def on_policy_event(event: PolicyStreamEvent) -> None:
        if isinstance(event, GrantChanged) and await grants.apply(event.data):
            change = event.data
            log.info("grant %s of %s now at version %s", change.grant_id, change.tenant, change.version)

    broker.subscriber(Topic.IAM_POLICY_UPDATED.value, **subscriber_options(group_id))(on_policy_event)
