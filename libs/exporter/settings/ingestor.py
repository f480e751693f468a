"""The ingestor's settings: its batches and flushes, and compaction. Part of the one settings
object (``Settings.ingestor``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CompactionSettings(BaseModel):
    """The ingestor's background merge of small segments (see ``ingestor.compaction``)."""

    enabled: bool = True
    # Pause between passes once caught up.
    interval_seconds: float = Field(default=10.0, gt=0)
    # Segments whose last reading arrived this long ago are merged: a redelivery comes before.
    settle_seconds: float = Field(default=60.0, ge=0)
    # Merged originals are deleted this long after: exports planned before still find them.
    retain_seconds: float = Field(default=3600.0, ge=0)
    # Segments with fewer readings are merged; a merge left below it takes in later ones.
    target_readings: int = Field(default=5000, ge=2)
    # Groups (series, day, arrival day) merged per pass, and at once.
    max_groups: int = Field(default=1000, ge=1)
    concurrency: int = Field(default=4, ge=1)
    # Arrival time one pass reads at most, and how far back a starting compactor begins.
    scan_seconds: float = Field(default=60.0, gt=0)
    lookback_seconds: float = Field(default=2 * 86400.0, gt=0)


class IngestorSettings(BaseModel):
    # Prefix of its consumer groups (ingest topics, grants); another deployment on the cluster needs its own.
    group_id: str = "ingestor"
    # Kafka messages taken per batch: things and entities, one bulk write and one offset commit
    # each; measurements, many batches to a flush.
    batch_max_messages: int = Field(default=500, ge=1)
    # A flush of measurements (one insert of segments, then one offset commit) once it holds this
    # many readings, or once its first waited flush_seconds: bigger flushes, bigger segments.
    flush_readings: int = Field(default=100_000, ge=1)
    flush_seconds: float = Field(default=1.0, gt=0)
    # Larger messages are dead-lettered unread. Keep it below the brokers' message size limit.
    max_message_bytes: int = Field(default=1_000_000, ge=1024)
    # How far ahead of the ingestor's clock a measurement's time may be (device clocks drift).
    max_future_skew_seconds: float = Field(default=300.0, ge=0)
    # Pause before a batch whose write failed is delivered again.
    retry_backoff_seconds: float = Field(default=1.0, gt=0)
    compaction: CompactionSettings = Field(default_factory=lambda: CompactionSettings())
