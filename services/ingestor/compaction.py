"""Compaction: the ingestor's background task that merges a series' small segments into large ones.

Each pass reads the live segments that settled (their last reading arrived ``settle_seconds``
ago or more: a Kafka redelivery comes well before) since the previous pass, a bounded stretch of
arrival time at most. Each small ingested one names a group: its series, its SPAN bucket of
time and its SPAN bucket of arrival (so a merged segment's arrivals stay within one bucket and
the reader's arrival bound still holds). A group's merge takes its live settled small segments
(below ``target_readings``: new ones and what the last merge left below it), whether they
overlap or not, and replaces them in one transaction; the originals are deleted
``retain_seconds`` later, so an export planned before the merge still finds them. A large
segment that late readings overlap stays as it is: the reader's first-arrived rule resolves the
overlap, and the merge never reads a day's large segments.

Only segments with a ``source`` (ingested, never merged) name groups: a merge's own output
never does, so what was merged is not merged again until new readings join its group. A segment
stored when its readings had already settled (an ingestor whose clock lags by more than
``settle_seconds``) lies behind the pass and waits for the next start's ``lookback_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from faststream import FastStream

from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.compaction import CompactionStore, Lost
from exporter.adapters.mongo.merging import merge
from exporter.adapters.mongo.segments import Series, bucket_of, from_document
from exporter.runtime import Runtime
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork
from exporter.settings.ingestor import CompactionSettings

log = logging.getLogger(__name__)


class Group(NamedTuple):
    """Segments that may become one: a series, a SPAN bucket of time and one of arrival (ms)."""

    series: Series
    bucket: int
    arrival_bucket: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def group_of(document: Document) -> Group:
    return Group(
        Series(*(document[field] for field in Series._fields)),
        bucket_of(_ms(document["from"])),
        bucket_of(_ms(document["arrived"])),
    )


def groups_to_merge(arrived: Sequence[Document], target: int) -> list[tuple[Group, datetime]]:
    """The groups named by small ingested segments among ``arrived``, each with the earliest
    ``lastArrived`` of those, earliest first."""
    earliest: dict[Group, datetime] = {}
    for document in arrived:
        if "source" in document and document["count"] < target:
            group = group_of(document)
            if group not in earliest or document["lastArrived"] < earliest[group]:
                earliest[group] = document["lastArrived"]
    return sorted(earliest.items(), key=lambda item: item[1])


def members(small: Sequence[Document], group: Group, settled: datetime) -> list[Document]:
    """What a merge of ``group`` takes of its series' ``small`` live segments: the settled ones of
    its channel, subtopic, SPAN bucket and arrival bucket."""
    return [doc for doc in small if group_of(doc) == group and doc["lastArrived"] < settled]


@dataclass
class PassReport:
    groups: int = 0
    merged: int = 0  # segments retired
    readings: int = 0  # readings written in merged segments
    fresh: int = 0  # of the segments retired, those ingested (never merged before)
    fresh_readings: int = 0
    failed: int = 0
    lost: int = 0
    deleted: int = 0
    caught_up: bool = True

    def add(self, **counts: int) -> None:
        for name, count in counts.items():
            setattr(self, name, getattr(self, name) + count)


@dataclass
class Compactor:
    unit_of_work: UnitOfWork  # its ``compaction`` store, and each merge's transaction
    settings: CompactionSettings
    # Arrival time read up to: segments that settled before it were looked at.
    watermark: datetime | None = None
    # Since the start, as they happen (a pass's own report comes at its end).
    totals: PassReport = field(default_factory=PassReport)

    @property
    def store(self) -> CompactionStore:
        return self.unit_of_work.compaction

    async def run(self) -> None:
        """Passes until cancelled; a pass that did not catch up is followed by the next at once."""
        while True:
            try:
                report = await self.once()
            except Exception:
                log.exception("compaction pass failed; again in %.0f s", self.settings.interval_seconds)
                report = PassReport()
            if report.caught_up:
                await asyncio.sleep(self.settings.interval_seconds)

    async def once(self, now: datetime | None = None) -> PassReport:
        """One pass: merges at most ``max_groups`` groups, then deletes what retired long enough ago."""
        now = now or datetime.now(UTC)
        settled = now - timedelta(seconds=self.settings.settle_seconds)  # no redelivery to come
        since = self.watermark or now - timedelta(seconds=self.settings.lookback_seconds)
        until = min(settled, since + timedelta(seconds=self.settings.scan_seconds))
        report = PassReport(caught_up=until >= settled)
        groups = groups_to_merge(await self.store.arrived(since, until), self.settings.target_readings)
        chosen, rest = groups[: self.settings.max_groups], groups[self.settings.max_groups :]
        semaphore = asyncio.Semaphore(self.settings.concurrency)

        async def one(group: Group) -> None:
            async with semaphore:
                await self._merge(group, settled, now, report)

        await asyncio.gather(*(one(group) for group, _ in chosen))
        if rest:
            until, report.caught_up = rest[0][1], False
        self.watermark = max(since, until)
        deleted = await self.store.sweep(now - timedelta(seconds=self.settings.retain_seconds))
        self._count(report, deleted=deleted)
        return report

    async def _merge(self, group: Group, settled: datetime, now: datetime, report: PassReport) -> None:
        """Merges one group; a failure is logged and counted, and the pass goes on."""
        try:
            small = await self.store.small(group.series, self.settings.target_readings)
            taken = members(small, group, settled)
            if not taken:
                return
            merged = merge([from_document(document) for document in taken])
            originals = [document["_id"] for document in taken]

            async def replace(transaction: Transaction) -> None:
                await transaction.compaction.replace(originals, merged, now, transaction.session)

            await self.unit_of_work.run(replace)
        except Lost:
            self._count(report, lost=1)
            return
        except Exception:
            log.exception("compaction of %s failed; its segments stay as they are", group)
            self._count(report, failed=1)
            return
        fresh = [document["count"] for document in taken if "source" in document]
        self._count(
            report,
            groups=1,
            merged=len(taken),
            readings=sum(segment.count for segment in merged),
            fresh=len(fresh),
            fresh_readings=sum(fresh),
        )

    def _count(self, report: PassReport, **counts: int) -> None:
        report.add(**counts)
        self.totals.add(**counts)


def compact_in_background(app: FastStream, runtime: Runtime, settings: CompactionSettings) -> None:
    """Runs a compactor in ``app`` from its start until the runtime closes (when enabled)."""
    if not settings.enabled:
        return
    compactor = Compactor(UnitOfWork.of(runtime), settings)

    @app.after_startup
    async def start_compacting() -> None:  # async: FastStream runs a plain function in a thread
        runtime.spawn(compactor.run())
