"""Keeps the grants collection in step with the IAM service.

The IAM service publishes each grant change on ``iam.policy-updated``, the topic it also reads
the request-api's announcements from. The request-api consumes it in a group of its own: grant
changes are stored (newest version wins, so redelivery and reordering are harmless), its own
announcements are passed over, and anything else goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import logging

from exporter.adapters.kafka import subscriber_options
from exporter.contracts.events import GrantChanged, PolicyStreamEvent
from exporter.runtime import Runtime
from exporter.topics import Topic

GROUP = "request-api-grants"
log = logging.getLogger(__name__)


def follow_grants(runtime: Runtime) -> None:
    """Subscribes before the broker starts."""

    async def on_policy_event(event: PolicyStreamEvent) -> None:
        if isinstance(event, GrantChanged) and await runtime.grants.apply(event.data):
            change = event.data
            log.info("grant %s of %s now at version %s", change.grant_id, change.tenant, change.version)

    runtime.broker.subscriber(Topic.IAM_POLICY_UPDATED.value, **subscriber_options(GROUP))(on_policy_event)
