"""Exports end to end through the real renderer, beside the raw scan of the same segments.

On fresh local servers it seeds one series (a reading a second) straight into the measurements
collection as the ingestor stores it: segments of ``SEGMENT_READINGS`` readings (never across a
day), packed columns. Then it runs the real ``python -m renderer`` and, per export, publishes an
``export.requested`` and waits for the job to be done: rows/s from the event to the job's
completion (MongoDB → object store), the CPU µs a row the store and the renderer spent (steadier
than rates on a shared machine) and the renderer's peak RSS during the job. Side by side:

- CSV and JSON Lines of ``--rows`` readings, and the raw scan of the same segments (a bare
  PyMongo ``find`` + ``numpy`` decode of the packed columns: the ceiling no export can pass),
  best of ``--rounds`` in alternating order (the machine is shared);
- a 15-minute-average CSV of ``--decimated-rows`` readings beside the raw scan of those;
- JSON, XLSX and PDF of fewer rows (``--other-rows``, ``--pdf-rows``): slow formats;
- the old one-document-per-reading layout, kept here only as the reference: ``--old-rows``
  readings seeded as documents, raw-scanned the same way and exported in this process through
  the old reader and the renderer's CSV writer, beside the new layout through the same path;
- the rendering stage alone (rows in memory → bytes) and polars writing the rows to a file.

``--memory`` adds CSV exports of 200k and 20M rows: memory must not grow with the row count.
The last line sums it up beside the issue's targets.

    python -m tests.benchmarks.bench_render [--rows 5000000] [--decimated-rows 10000000] [--memory]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
from aiokafka import AIOKafkaProducer
from pymongo import ASCENDING, IndexModel, MongoClient

from exporter.adapters.kafka import client_options
from exporter.adapters.mongo.client import MEASUREMENTS, Document
from exporter.adapters.mongo.segments import (
    SPAN_MS,
    Segment,
    Series,
    Tags,
    bucket_of,
    earliest_start,
    segment_id,
    to_document,
)
from exporter.contracts.base import utcnow
from exporter.contracts.request import DEFAULT_COLUMNS, Extension
from exporter.rendering.output import WRITERS
from exporter.rendering.table import Layout
from exporter.rendering.writers import Document as FileDocument
from exporter.runtime import Runtime
from exporter.settings import Settings
from tests.benchmarks.harness import CpuMeter, local_servers, server_pid, service
from tests.benchmarks.render_export import (
    DEVICE,
    METRIC,
    START,
    TENANT,
    Export,
    Renderer,
    Run,
    cpu_per_row,
    faster,
)
from tests.benchmarks.render_stage import (
    FORMATS,
    POLARS_WRITES,
    SLOW_FORMAT_ROWS,
    TIMEZONE,
    CountingSink,
    measure_render_stage,
)

START_MS = int(START.timestamp() * 1000)
SERIES = Series(TENANT, "plant-1", "events.data", DEVICE, METRIC)
TAGS = Tags("Cel", "mqtt", "value")
SEGMENT_READINGS = 5_000
SEED_DOCUMENTS = 40
# The reference layout: one document per reading, in a collection of the benchmark's own.
BY_READING = "measurements_by_reading"
READ_BATCH = 10_000
WARMUP_ROWS = 1_000
STAGE_ROWS = 1_000_000
MEMORY_ROWS = (200_000, 20_000_000)
DECIMATION = {"ds": "15m", "dsf": "avg"}
MB = 1024 * 1024
# Issue 15's targets on this 2-core machine.
EXPORT_RATE = 300_000
SCAN_FRACTION = 0.8
MEMORY_GROWTH_MB = 64


def segment(first: int, count: int) -> Segment:
    """Readings ``first`` … ``first + count - 1`` of the series: one a second from ``START``."""
    index = np.arange(first, first + count, dtype=np.int64)
    return Segment(
        id=segment_id(SERIES, TAGS, 0, first),
        series=SERIES,
        tags=TAGS,
        times=START_MS + index * 1000,
        values=20 + (index % 1000) / 10,
        arrivals=np.full(count, START_MS + SPAN_MS * 400, dtype=np.int64),
    )


def segment_bounds(rows: int) -> list[tuple[int, int]]:
    """(first, count) of each segment: ``SEGMENT_READINGS`` each, cut at each day's end."""
    bounds, first = [], 0
    while first < rows:
        time_ms = START_MS + first * 1000
        day_left = (bucket_of(time_ms) + SPAN_MS - time_ms) // 1000
        count = min(SEGMENT_READINGS, rows - first, day_left)
        bounds.append((first, count))
        first += count
    return bounds


async def seed(runtime: Runtime, rows: int) -> float:
    """Stores the series' first ``rows`` readings as segments; readings/s."""
    collection = runtime.db[MEASUREMENTS]
    bounds = segment_bounds(rows)
    started = time.perf_counter()
    for at in range(0, len(bounds), SEED_DOCUMENTS):
        await collection.insert_many([to_document(segment(*b)) for b in bounds[at : at + SEED_DOCUMENTS]])
    return rows / (time.perf_counter() - started)


async def seed_by_reading(runtime: Runtime, rows: int) -> float:
    """The reference layout: ``rows`` readings as one document each, as the ingestor stored them
    before segments; documents/s."""
    collection = runtime.db[BY_READING]
    await collection.create_indexes(
        [IndexModel([(f, ASCENDING) for f in ("tenant", "publisher", "name", "time")])]
    )
    created, started = utcnow(), time.perf_counter()
    for first in range(0, rows, READ_BATCH):
        documents = [
            {
                **SERIES._asdict(),
                **TAGS._asdict(),
                "time": START + timedelta(seconds=i),
                "value": 20 + i % 1000 / 10,
                "created": created,
            }
            for i in range(first, min(rows, first + READ_BATCH))
        ]
        await collection.insert_many(documents, ordered=False)
    return rows / (time.perf_counter() - started)


def raw_scan(settings: Settings, rows: int, store_pid: int) -> Run:
    """The segments holding the first ``rows`` readings, found as the reader plans them and
    decoded with ``numpy`` only, in a thread of this process."""
    end = START + timedelta(seconds=rows)
    query = {**SERIES._asdict(), "from": {"$gte": earliest_start(START), "$lt": end}}
    end_ms = START_MS + rows * 1000

    def scan(documents: MongoClient[Document]) -> int:
        seen = 0
        cursor = documents[settings.mongo.database][MEASUREMENTS].find(query).sort("from", ASCENDING)
        for document in cursor:
            times = np.frombuffer(document["times"], dtype="<i8")
            np.frombuffer(document["values"], dtype="<f8")
            seen += int(np.count_nonzero(times < end_ms))
        return seen

    return _timed_scan(settings, rows, store_pid, scan)


def raw_scan_by_reading(settings: Settings, rows: int, store_pid: int) -> Run:
    """The reference layout's documents, in time order, decoded only."""
    query = {"tenant": TENANT, "publisher": DEVICE, "name": METRIC}

    def scan(documents: MongoClient[Document]) -> int:
        cursor = documents[settings.mongo.database][BY_READING].find(query).sort("time", ASCENDING)
        return sum(1 for _ in cursor.batch_size(READ_BATCH))

    return _timed_scan(settings, rows, store_pid, scan)


def _timed_scan(
    settings: Settings, rows: int, store_pid: int, scan: Callable[[MongoClient[Document]], int]
) -> Run:
    client: MongoClient[Document] = MongoClient(settings.mongo.uri.get_secret_value())
    meter = CpuMeter({"store": store_pid})
    meter.start()
    started = time.perf_counter()
    try:
        seen = scan(client)
    finally:
        client.close()
    if seen != rows:
        raise RuntimeError(f"scanned {seen} readings, expected {rows}")
    return Run(rows / (time.perf_counter() - started), *cpu_per_row(meter.stop(), rows, "load generator"))


def by_reading_frame(rows: list[Document]) -> pl.DataFrame:
    """The old reader's decoding: a frame from one batch of documents."""
    columns = {
        name: [row[name] for row in rows] for name in ("publisher", "channel", "subtopic", "name", "unit")
    }
    naive = pl.Datetime("us")
    frame = pl.DataFrame(
        columns
        | {
            "time": pl.Series([row["time"] for row in rows], dtype=naive),
            "value": [row["value"] for row in rows],
            "created": pl.Series([row["created"] for row in rows], dtype=naive),
        }
    )
    return frame.with_columns(pl.col("time", "created").dt.replace_time_zone("UTC"))


async def by_reading_frames(runtime: Runtime) -> AsyncIterator[pl.DataFrame]:
    """The reference layout read as the old reader did: documents in time order, a batch a frame."""
    collection = runtime.db[BY_READING].with_options(
        codec_options=runtime.db.codec_options.with_options(tz_aware=False)
    )
    query = {"tenant": TENANT, "publisher": DEVICE, "name": METRIC}
    cursor = collection.find(query).sort("time", ASCENDING).batch_size(READ_BATCH)
    while batch := await cursor.to_list(READ_BATCH):
        yield by_reading_frame(batch)


async def csv_in_process(frames: AsyncIterator[pl.DataFrame]) -> float:
    """Frames read and written as CSV by the renderer's writer, here, bytes counted: rows/s."""
    writer = WRITERS["csv"]
    layout = Layout(
        DEFAULT_COLUMNS, TIMEZONE, native_times=writer.native_times, neutralise=writer.neutralises_formulas
    )
    rows, started = 0, time.perf_counter()
    with writer(CountingSink(), FileDocument(layout.labels, title="bench", timezone=TIMEZONE)) as output:
        async for frame in frames:
            output.write(layout.shape(frame))
            rows += frame.height
    return rows / (time.perf_counter() - started)


@dataclass(frozen=True)
class Plan:
    rows: int
    decimated_rows: int
    other_rows: int
    pdf_rows: int
    old_rows: int
    rounds: int
    memory: bool

    def counts(self) -> dict[Extension, int]:
        slow = {"json": self.other_rows, "xlsx": self.other_rows, "pdf": self.pdf_rows}
        return {extension: slow.get(extension, self.rows) for extension in FORMATS}


@dataclass
class Figures:
    plan: Plan
    seeded: float
    raw_scan: Run
    exports: dict[Extension, Export] = field(default_factory=dict)
    decimated: Export | None = None
    decimated_scan: Run | None = None
    # The reference layout: seeding (documents/s), raw scan, and read + CSV in process, beside
    # the segments through the same path.
    old_seeded: float = 0.0
    old_scan: Run | None = None
    old_csv: float = 0.0
    new_csv: float = 0.0
    reader: float = 0.0  # readings/s through the read path alone, in process
    stage: dict[str, float] = field(default_factory=dict)
    polars: dict[Extension, float] = field(default_factory=dict)
    memory: list[Export] = field(default_factory=list)


async def store_bound(renderer: Renderer, plan: Plan, seeded: float) -> Figures:
    """The raw scan, the read path alone and the CSV and JSON Lines exports, best of ``rounds``,
    the order reversed every other round (the machine is shared); then the other formats once."""
    runtime, store = renderer.runtime, renderer.store_pid
    scan: Run | None = None
    reader = 0.0
    exports: dict[Extension, Export] = {}
    steps: list[Extension | None] = ["csv", None, "jsonl"]  # None: the raw scan, then the read path
    for round_ in range(plan.rounds):
        for extension in steps if round_ % 2 == 0 else steps[::-1]:
            if extension is None:
                run = await asyncio.to_thread(raw_scan, runtime.settings, plan.rows, store)
                print(f"  raw scan {run}", flush=True)
                scan = faster(scan, run)
                alone = await read_alone(runtime, plan.rows)
                print(f"  read path alone {alone:12,.0f} readings/s", flush=True)
                reader = max(reader, alone)
            else:
                export = await renderer.export(extension, plan.rows, f"bench-{extension}-{round_}")
                print(f"  {extension:<8} {export}", flush=True)
                exports[extension] = faster(exports.get(extension), export)
    assert scan is not None, "at least one round"
    for extension, rows in plan.counts().items():
        if extension not in exports:
            exports[extension] = await renderer.export(extension, rows, f"bench-{extension}")
            print(f"  {extension:<8} {exports[extension]}", flush=True)
    ordered = {extension: exports[extension] for extension in FORMATS}
    return Figures(plan, seeded, scan, ordered, reader=reader)


async def decimated(renderer: Renderer, figures: Figures) -> None:
    rows = figures.plan.decimated_rows
    settings, store = renderer.runtime.settings, renderer.store_pid
    figures.decimated_scan = await asyncio.to_thread(raw_scan, settings, rows, store)
    print(f"  raw scan of {rows:,} {figures.decimated_scan}", flush=True)
    figures.decimated = await renderer.export("csv", rows, "bench-decimated", DECIMATION)
    print(f"  15-minute avg {figures.decimated}", flush=True)


async def reference(runtime: Runtime, figures: Figures, store_pid: int) -> None:
    """The old layout beside the new, at the size the old one affords."""
    rows = figures.plan.old_rows
    print(f"seeding {rows:,} readings a document each (the old layout) ...", flush=True)
    figures.old_seeded = await seed_by_reading(runtime, rows)
    figures.old_scan = await asyncio.to_thread(raw_scan_by_reading, runtime.settings, rows, store_pid)
    end = START + timedelta(seconds=rows)
    for old_first in (True, False):  # best of two, in both orders (the machine is shared)
        for old in (old_first, not old_first):
            if old:
                figures.old_csv = max(figures.old_csv, await csv_in_process(by_reading_frames(runtime)))
            else:
                frames = runtime.measurements.frames(TENANT, DEVICE, METRIC, START, end, READ_BATCH)
                figures.new_csv = max(figures.new_csv, await csv_in_process(frames))


async def read_alone(runtime: Runtime, rows: int) -> float:
    """The read path by itself, in this process: plan, fetch, decode, frames of the batch size."""
    frames = runtime.measurements.frames(
        TENANT, DEVICE, METRIC, START, START + timedelta(seconds=rows), READ_BATCH
    )
    started, seen = time.perf_counter(), 0
    async for frame in frames:
        seen += frame.height
    return seen / (time.perf_counter() - started)


async def in_memory(runtime: Runtime, figures: Figures, folder: Path) -> None:
    rows = min(figures.plan.rows, STAGE_ROWS)
    end = START + timedelta(seconds=rows)
    frame = pl.concat(
        [f async for f in runtime.measurements.frames(TENANT, DEVICE, METRIC, START, end, READ_BATCH)]
    )
    figures.stage = measure_render_stage(frame)
    for extension, write in POLARS_WRITES.items():
        started = time.perf_counter()
        write(frame, folder / f"polars.{extension}")
        figures.polars[extension] = frame.height / (time.perf_counter() - started)


async def measure(settings: Settings, store_pid: int, plan: Plan) -> Figures:
    runtime = Runtime.build(settings)
    await runtime.prepare()
    producer = AIOKafkaProducer(**client_options(settings.kafka), linger_ms=0)
    await producer.start()
    try:
        stored = max(plan.rows, plan.decimated_rows, MEMORY_ROWS[-1] if plan.memory else 0)
        print(f"seeding {stored:,} readings in segments of {SEGMENT_READINGS:,} ...", flush=True)
        seeded = await seed(runtime, stored)
        print(f"  {seeded:,.0f} readings/s", flush=True)
        # Once over everything, not measured: the store writes back what it was just given.
        await asyncio.to_thread(raw_scan, settings, stored, store_pid)
        with tempfile.TemporaryDirectory(prefix="bench-render-") as scratch:
            folder = Path(scratch)
            with (folder / "renderer.log").open("wb") as log, service(settings, "renderer", log=log) as pid:
                renderer = Renderer(runtime, producer, pid, store_pid)
                await renderer.export("csv", WARMUP_ROWS, "bench-warmup")  # joins the group, connects
                figures = await store_bound(renderer, plan, seeded)
                await decimated(renderer, figures)
                sizes = MEMORY_ROWS if plan.memory else ()
                figures.memory = [await renderer.export("csv", n, f"bench-memory-{n}") for n in sizes]
            await reference(runtime, figures, store_pid)
            await in_memory(runtime, figures, folder)
            return figures
    finally:
        await producer.stop()
        await runtime.close()


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(f: Figures) -> list[str]:
    raw, stage = f.raw_scan.rate, f.stage
    counts = f.plan.counts()
    lines = [
        f"segments of {SEGMENT_READINGS:,} readings, seeded at {f.seeded:,.0f} readings/s",
        f"raw scan of {f.plan.rows:,} readings (find + numpy decode) {f.raw_scan}",
        f"the read path alone (plan, fetch, decode, time order), in process: {f.reader:,.0f} readings/s "
        f"({f.reader / raw:.2f}x raw scan)",
        f"{'format':<7}{'rows':>12}{'end to end':>12}{'/ raw':>7}{'CPU µs/row':>11}"
        f"{'peak RSS':>10}{'(idle)':>8}{'stage alone':>13}{'polars→file':>13}",
    ]
    for extension, export in f.exports.items():
        polars = f"{f.polars[extension]:,.0f}" if extension in f.polars else "-"
        lines.append(
            f"{extension:<7}{counts[extension]:>12,}{export.rate:>12,.0f}{export.rate / raw:>7.2f}"
            f"{export.client_us:>11.2f}{export.peak_rss / MB:>7.0f} MB{export.idle_rss / MB:>5.0f} MB"
            f"{stage[extension]:>13,.0f}{polars:>13}"
        )
    assert f.decimated is not None
    assert f.decimated_scan is not None
    assert f.old_scan is not None
    decimated, scan = f.decimated, f.decimated_scan.rate
    fraction = decimated.rate / scan
    lines += [
        f"15-minute avg of {f.plan.decimated_rows:,} readings: {decimated.rate:,.0f} readings/s end "
        f"to end, raw scan {scan:,.0f}/s ({fraction:.2f}x), peak RSS {decimated.peak_rss / MB:.0f} MB",
        f"old layout (one document a reading), {f.plan.old_rows:,} readings: seeded "
        f"{f.old_seeded:,.0f}/s, raw scan {f.old_scan.rate:,.0f}/s; read + CSV in process: old "
        f"{f.old_csv:,.0f} rows/s, segments {f.new_csv:,.0f} rows/s ({f.new_csv / f.old_csv:.0f}x)",
    ]
    checks = []
    for extension in ("csv", "jsonl"):
        rate = f.exports[extension].rate
        checks.append(
            f"{extension} {rate:,.0f} rows/s (≥ {EXPORT_RATE:,}) {verdict(rate >= EXPORT_RATE)}, "
            f"{rate / raw:.2f}x raw scan (≥ {SCAN_FRACTION}) {verdict(rate / raw >= SCAN_FRACTION)}"
        )
    checks.append(
        f"15-min avg {fraction:.2f}x raw scan (≥ {SCAN_FRACTION}) {verdict(fraction >= SCAN_FRACTION)}"
    )
    if f.memory:
        small, large = f.memory
        growth = (large.peak_rss - small.peak_rss) / MB
        lines.append(
            f"memory: csv {MEMORY_ROWS[0]:,} rows peak {small.peak_rss / MB:.0f} MB, "
            f"{MEMORY_ROWS[1]:,} rows peak {large.peak_rss / MB:.0f} MB ({large.rate:,.0f} rows/s)"
        )
        checks.append(f"memory +{growth:.0f} MB (≤ {MEMORY_GROWTH_MB}) {verdict(growth <= MEMORY_GROWTH_MB)}")
    else:
        checks.append("memory not measured (--memory)")
    checks.append(f"read path alone {f.reader / raw:.2f}x raw scan")
    checks.append(f"old layout csv {f.old_csv:,.0f} rows/s in process")
    lines.append("bench-render vs targets: " + "; ".join(checks))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="CSV and JSON Lines")
    parser.add_argument("--decimated-rows", type=int, default=10_000_000)
    parser.add_argument("--other-rows", type=int, default=500_000, help="JSON and XLSX")
    parser.add_argument("--pdf-rows", type=int, default=SLOW_FORMAT_ROWS)
    parser.add_argument("--old-rows", type=int, default=200_000, help="the old layout's reference")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help=f"also export {MEMORY_ROWS} rows as CSV")
    a = parser.parse_args()
    plan = Plan(a.rows, a.decimated_rows, a.other_rows, a.pdf_rows, a.old_rows, a.rounds, a.memory)
    with local_servers() as (settings, servers):
        figures = asyncio.run(measure(settings, server_pid(servers, "mongo"), plan))
    for line in report(figures):
        print(line, flush=True)


if __name__ == "__main__":
    main()
