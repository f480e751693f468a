"""The topic registry: every Kafka topic name the system uses, and its dead-letter twin."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    EXPORT_REQUESTED = "export.requested"
    EXPORT_COMPLETED = "export.completed"
    IAM_POLICY_UPDATED = "iam.policy-updated"
    # Ingest: SenML-like measurement records and packs from upstream devices.
    MEASUREMENTS = "messages"
    # Ingest: thing metadata (serial number, definition, customer, location).
    THINGS = "things"
    # Ingest: business entities of any EntityType.
    ENTITIES = "entities"

    @property
    def dead_letter(self) -> str:
        """Where a consumer parks a message it cannot accept, with the reason in its headers."""
        return f"{self.value}.dlq"


def all_topic_names() -> list[str]:
    """Every topic the project creates at start, dead-letter topics included."""
    return [name for topic in Topic for name in (topic.value, topic.dead_letter)]
