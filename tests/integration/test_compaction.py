"""Compaction against the real store: every reading kept as the reader sees it, merged once
however many compactors race, originals kept for the retention and then deleted."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from exporter.adapters.mongo import segments as layout
from exporter.adapters.mongo.client import MEASUREMENTS, Document
from exporter.adapters.mongo.compaction import Lost
from exporter.adapters.mongo.merging import merge
from exporter.adapters.mongo.segments import (
    SPAN_MS,
    Segment,
    Series,
    Tags,
    bucket_of,
    first_arrived,
    frame_of,
    from_document,
)
from exporter.adapters.mongo.series_reader import SeriesRead, SeriesReader
from exporter.runtime import Runtime
from exporter.service_layer.unit_of_work import Transaction, UnitOfWork
from exporter.settings.ingestor import CompactionSettings
from ingestor.app import create_app as ingestor_app
from ingestor.compaction import Compactor
from tests.compaction_cases import SERIES, T0, TAGS, ingested
from tests.integration.notifier_support import eventually

pytestmark = pytest.mark.servers
SETTINGS = CompactionSettings(lookback_seconds=4 * 86400, scan_seconds=5 * 86400)
NOW = datetime.now(UTC)
NOW_MS = int(NOW.timestamp() * 1000)
# Arrivals hours old (settled), all in one SPAN bucket of arrival time.
ARRIVED = bucket_of(NOW_MS - 3 * 3600 * 1000) + 1000


async def live(runtime: Runtime) -> list[Document]:
    return await runtime.db[MEASUREMENTS].find({"retiredAt": None}).to_list(None)


async def readings(runtime: Runtime) -> pl.DataFrame:
    """What a reader sees of every live segment: first arrived per series and millisecond."""
    frame = first_arrived(frame_of([from_document(document) for document in await live(runtime)]))
    return frame.drop("rank").sort("publisher", "name", "time")


async def replace(runtime: Runtime, segments: list[Segment]) -> None:
    """One merge of ``segments`` as the compactor commits it, without the compactor's choice."""

    async def work(transaction: Transaction) -> None:
        merged = merge(segments)
        await transaction.compaction.replace([s.id for s in segments], merged, NOW, transaction.session)

    await UnitOfWork.of(runtime).run(work)


async def test_merging_keeps_every_reading_and_the_first_arrived_rule(runtime: Runtime) -> None:
    kelvin = Tags("K", "mqtt", "value")
    other = Series("t1", "ch", "events", "dev-2", "temp")
    segments = [
        ingested([5000, 6000, 7000], [5.0, 6.0, 7.0], ARRIVED),
        ingested([0, 1000, 6000], [0.0, 1.0, 60.0], ARRIVED + 10),  # earlier times, later arrival
        ingested([6000, 8000], [600.0, 8.0], ARRIVED - 5, tags=kelvin),  # arrived first: wins 6000
        ingested([7000, 9000], [70.0, 9.0], ARRIVED),  # a tie on 7000: the lower rank wins
        ingested([3000], [3.0], ARRIVED - SPAN_MS),  # another day of arrival: merged apart
        ingested([0, 1000], [1.0, 2.0], ARRIVED, series=other),
        ingested([4000], [4.0], NOW_MS - 1000),  # not settled: stays as it is
    ]
    await runtime.measurements.add(segments)
    before = await readings(runtime)

    report = await Compactor(UnitOfWork.of(runtime), SETTINGS).once(NOW)

    assert (report.groups, report.merged, report.failed) == (3, 6, 0)
    assert (await readings(runtime)).equals(before)
    stored = {document["_id"]: document for document in await live(runtime)}
    merged = [document for document in stored.values() if "source" not in document]
    assert sorted((d["publisher"], d["unit"], d["count"]) for d in merged) == [
        ("dev-1", "Cel", 1),
        ("dev-1", "Cel", 5),
        ("dev-1", "K", 2),
        ("dev-2", "Cel", 2),
    ]
    assert set(stored) - {d["_id"] for d in merged} == {segments[-1].id}
    retired = await runtime.db[MEASUREMENTS].find({"retiredBy": {"$exists": True}}).to_list(None)
    assert len(retired) == 6
    assert all(document["retiredBy"] in stored and document["retiredAt"] for document in retired)


async def test_two_compactors_at_once_merge_once(runtime: Runtime) -> None:
    segments = [ingested([second * 1000], [float(second)], ARRIVED + second) for second in range(20)]
    await runtime.measurements.add(segments)
    before = await readings(runtime)
    unit_of_work = UnitOfWork.of(runtime)

    reports = await asyncio.gather(*(Compactor(unit_of_work, SETTINGS).once(NOW) for _ in range(3)))
    outcomes = await asyncio.gather(
        *(replace(runtime, segments[:2]) for _ in range(2)),
        return_exceptions=True,
    )

    assert sum(report.groups for report in reports) == 1
    assert [type(outcome) for outcome in outcomes] == [Lost, Lost]  # already merged above
    assert len(await live(runtime)) == 1
    assert (await readings(runtime)).equals(before)


async def test_of_two_racing_merges_one_commits(runtime: Runtime) -> None:
    segments = [ingested([second * 1000], [float(second)], ARRIVED) for second in range(4)]
    await runtime.measurements.add(segments)

    outcomes = await asyncio.gather(
        replace(runtime, segments),
        replace(runtime, segments[1:]),
        return_exceptions=True,
    )

    assert sorted(str(type(outcome).__name__) for outcome in outcomes) == ["Lost", "NoneType"]
    assert len(await live(runtime)) in (1, 2)  # the first merge alone, or the second and segment 0
    assert (await readings(runtime))["value"].to_list() == [0.0, 1.0, 2.0, 3.0]


async def test_retired_originals_are_deleted_after_the_retention_and_not_before(runtime: Runtime) -> None:
    await runtime.measurements.add([ingested([0], [1.0], ARRIVED), ingested([1000], [2.0], ARRIVED)])
    compactor = Compactor(UnitOfWork.of(runtime), SETTINGS)
    collection = runtime.db[MEASUREMENTS]

    await compactor.once(NOW)
    almost = await compactor.once(NOW + timedelta(seconds=SETTINGS.retain_seconds - 1))
    assert (almost.deleted, await collection.count_documents({})) == (0, 3)
    after = await compactor.once(NOW + timedelta(seconds=SETTINGS.retain_seconds + 1))
    assert (after.deleted, await collection.count_documents({})) == (2, 1)


async def test_a_group_that_fails_is_skipped_and_the_rest_compact(runtime: Runtime) -> None:
    other = Series("t1", "ch", "events", "dev-2", "temp")
    good = [ingested([0], [1.0], ARRIVED, series=other), ingested([1000], [2.0], ARRIVED, series=other)]
    bad = [ingested([0], [1.0], ARRIVED), ingested([1000], [2.0], ARRIVED)]
    await runtime.measurements.add(good + bad)
    collection = runtime.db[MEASUREMENTS]
    await collection.update_one({"_id": bad[0].id}, {"$set": {"times": b"\x01"}})  # damaged

    report = await Compactor(UnitOfWork.of(runtime), SETTINGS).once(NOW)

    assert (report.groups, report.failed) == (1, 1)
    assert {d["_id"] for d in await live(runtime) if d["publisher"] == "dev-1"} == {s.id for s in bad}
    assert [d["count"] for d in await live(runtime) if d["publisher"] == "dev-2"] == [2]


async def test_a_merge_beyond_max_readings_is_split(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layout, "MAX_READINGS", 10)
    segments = [ingested(range(k * 8000, k * 8000 + 8000, 1000), [float(k)] * 8, ARRIVED) for k in range(3)]
    await runtime.measurements.add(segments)
    before = await readings(runtime)

    report = await Compactor(UnitOfWork.of(runtime), SETTINGS).once(NOW)

    stored = await live(runtime)
    assert (report.groups, report.merged) == (1, 3)
    assert sorted(document["count"] for document in stored) == [4, 10, 10]
    assert all("source" not in document and document["unit"] == TAGS.unit for document in stored)
    pieces = sorted(stored, key=lambda document: document["from"])
    assert all(piece["to"] < later["from"] for piece, later in itertools.pairwise(pieces))
    assert (await readings(runtime)).equals(before)


async def test_nothing_is_merged_twice(runtime: Runtime) -> None:
    await runtime.measurements.add([ingested([0], [1.0], ARRIVED), ingested([1000], [2.0], ARRIVED)])
    compactor = Compactor(UnitOfWork.of(runtime), SETTINGS)
    first = await compactor.once(NOW)
    fresh = Compactor(UnitOfWork.of(runtime), SETTINGS)  # a restarted ingestor: no watermark
    again = await fresh.once(NOW)
    assert (first.groups, again.groups) == (1, 0)


async def test_the_ingestor_compacts_in_the_background(runtime: Runtime) -> None:
    compaction = SETTINGS.model_copy(update={"interval_seconds": 0.2})
    ingestor = runtime.settings.ingestor.model_copy(update={"compaction": compaction})
    await runtime.measurements.add([ingested([0], [1.0], ARRIVED), ingested([1000], [2.0], ARRIVED)])

    async def merged() -> list[Document] | None:
        stored = await live(runtime)
        return stored if len(stored) == 1 else None

    async with ingestor_app(runtime.settings.model_copy(update={"ingestor": ingestor})):
        [document] = await eventually(merged, "the two segments merged")
    assert document["count"] == 2


async def test_a_merge_left_small_takes_in_what_arrives_later(runtime: Runtime) -> None:
    noon = bucket_of(NOW_MS) - SPAN_MS // 2  # yesterday noon: all arrivals on one day
    first = [ingested([0], [1.0], noon - 600_000), ingested([1000], [2.0], noon - 600_000)]
    await runtime.measurements.add(first)
    compactor = Compactor(UnitOfWork.of(runtime), SETTINGS)
    at_noon = datetime.fromtimestamp(noon / 1000, UTC)
    await compactor.once(at_noon)
    await runtime.measurements.add([ingested([2000], [3.0], noon + 60_000)])

    report = await compactor.once(at_noon + timedelta(minutes=5))

    [merged] = await live(runtime)
    assert (report.groups, report.merged, report.fresh, merged["count"]) == (1, 2, 1, 3)
    assert merged["arrived"] == datetime.fromtimestamp((noon - 600_000) / 1000, UTC)


async def csv_bytes(frames: list[pl.DataFrame]) -> bytes:
    return pl.concat(frames).write_csv().encode()


async def export(runtime: Runtime, pause: tuple[asyncio.Event, asyncio.Event] | None = None) -> bytes:
    """The series as an export reads it: small frames in time order, as CSV.

    Given ``pause`` (read, resume), the read sets ``read`` after its first frame and waits for
    ``resume``."""
    frames = []
    window_start = datetime.fromtimestamp(T0 / 1000, UTC)
    read = SeriesRead("t1", SERIES.publisher, (SERIES.name,), window_start, window_start + timedelta(days=1))
    # A segment a fetch: most of the plan is still to be fetched when the compaction commits.
    reader = SeriesReader(runtime.db[MEASUREMENTS], read, fetch_readings=30)
    async for frame in reader.frames(64):
        frames.append(frame)
        if pause is not None and len(frames) == 1:
            pause[0].set()
            await pause[1].wait()
    return await csv_bytes(frames)


async def test_a_compaction_during_an_export_changes_no_byte_of_it(runtime: Runtime) -> None:
    # 40 flushes of one series, arriving a second apart, overlapping in time (late readings and
    # second values for the same millisecond, which the first arrival keeps).
    segments = [
        ingested(
            [(flush * 7 + k * 13) % 2_000 * 1000 for k in range(30)],
            [float(flush * 100 + k) for k in range(30)],
            ARRIVED + flush * 1000,
        )
        for flush in range(40)
    ]
    await runtime.measurements.add(segments)
    without = await export(runtime)
    rows = without.count(b"\n") - 1
    assert 500 < rows < 40 * 30  # many times stored twice or more: the first arrival decides

    first_frame, resume = asyncio.Event(), asyncio.Event()
    reading = asyncio.create_task(export(runtime, (first_frame, resume)))
    await first_frame.wait()  # planned, and read a frame: now merge everything under it
    report = await Compactor(UnitOfWork.of(runtime), SETTINGS).once(NOW)
    assert report.merged == len(segments), report
    resume.set()
    during = await reading
    after = await export(runtime)  # plans the merged segments beside their retired originals

    assert during == without
    assert after == without
    assert await runtime.db[MEASUREMENTS].count_documents({"retiredBy": {"$exists": True}}) == len(segments)
