"""Compaction under ingest: does merging keep up with 100,000 records/s of small segments?

On fresh local servers, writer tasks insert segments as the ingestor's 1-second flushes of
``--series`` series would (about 100 readings each), at ``--rate`` records/s or as fast as they
can, for ``--seconds``; meanwhile the ingestor's compaction loop runs in a process of its own
(as it runs beside the consumers in the ingestor), with a short settle time and retention so
that merging and deleting both happen within the run. Every few seconds it prints the records
written, the ingested readings merged and the backlog: ingested segments not merged yet. Then
the writers stop and the time the loop takes to drain the backlog is measured.

The last line: compaction's readings/s (merged while the writers wrote, counted from when the
first segments settled) beside the ingest rate and its 100,000 records/s target, and whether it
keeps up: whether the backlog stayed bounded (its peak over the second half of the writing no
more than 1.25x its peak over the first half, plus one flush).

    make bench-compact BENCH_COMPACT_ARGS="--seconds 20 --series 200"
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection

import numpy as np

from exporter.adapters.mongo.client import connect, database, ensure_indexes
from exporter.adapters.mongo.measurements import MeasurementRepository
from exporter.adapters.mongo.merging import merge
from exporter.adapters.mongo.segments import (
    Segment,
    Series,
    Source,
    Tags,
    from_document,
    position,
    segment_id,
    to_document,
)
from exporter.runtime import Runtime
from exporter.service_layer.unit_of_work import UnitOfWork
from exporter.settings import Settings
from exporter.settings.ingestor import CompactionSettings
from ingestor.compaction import Compactor
from tests.benchmarks.harness import CpuMeter, local_servers, server_pid

TARGET = 100_000
READINGS = 100  # a segment's, by default: a 1-second flush of a series sending 100 a second
STEP_MS = 10
TAGS = Tags("Cel", "mqtt", "value")
COMPACTION = CompactionSettings(
    interval_seconds=1.0, settle_seconds=2.0, retain_seconds=10.0, lookback_seconds=60.0, max_groups=5000
)
WRITERS = 4
START_MS = int(time.time() * 1000) // 86_400_000 * 86_400_000  # a day's start: one SPAN bucket
REPORT_SECONDS = 5.0


def flush(series: list[Series], number: int, now_ms: int, readings: int) -> list[Segment]:
    """The ``number``th flush: the next ``readings`` readings of each series, 10 ms apart."""
    times = START_MS + (number * readings + np.arange(readings, dtype=np.int64)) * STEP_MS
    arrivals = np.full(readings, now_ms, dtype=np.int64)
    rng = np.random.default_rng(number)
    segments = []
    for index, one in enumerate(series):
        first = position(number, index)
        segments.append(
            Segment(
                id=segment_id(one, TAGS, 0, first),
                series=one,
                tags=TAGS,
                times=times,
                values=rng.random(readings),
                arrivals=arrivals,
                source=Source(0, first, first + readings - 1),
            )
        )
    return segments


@dataclass
class Run:
    """What the writers wrote and what the compactor reported, as the run goes."""

    readings: int = 0
    segments: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    backlog: list[int] = field(default_factory=list)  # one per report while writing
    merged_writing: int = 0  # ingested readings merged by when the writers stopped
    seconds: float = 0.0  # from the first write until the backlog drained

    def merged(self, name: str = "fresh_readings") -> int:
        return self.totals.get(name, 0)


@dataclass(frozen=True)
class Load:
    series: int
    rate: int  # records/s the writers aim at
    seconds: float
    readings: int  # per segment


async def write(settings: Settings, load: Load, run: Run) -> None:
    """Flushes of ``load.series`` spread over ``WRITERS`` tasks, paced to ``load.rate`` in all."""
    client = connect(settings)
    repository = MeasurementRepository(database(client, settings))
    series = [Series("bench", "plant", "events", f"dev-{i // 10}", f"m-{i % 10}") for i in range(load.series)]
    period = load.series * load.readings / load.rate
    shares = [series[index::WRITERS] for index in range(WRITERS)]
    start = time.monotonic()
    number = 0
    try:
        while time.monotonic() - start < load.seconds:
            now_ms = int(time.time() * 1000)
            flushes = [flush(share, number, now_ms, load.readings) for share in shares]
            await asyncio.gather(*(repository.add(segments) for segments in flushes))
            run.readings += load.series * load.readings
            run.segments += load.series
            number += 1
            await asyncio.sleep(max(0.0, number * period - (time.monotonic() - start)))
    finally:
        await client.close()


def compact(settings: Settings, pipe: Connection) -> None:
    """The compaction loop in a process of its own; sends its totals twice a second."""

    async def run() -> None:
        runtime = Runtime.build(settings)  # its store and unit of work; no broker is started
        compactor = Compactor(UnitOfWork.of(runtime), COMPACTION)
        loop = asyncio.create_task(compactor.run())
        while not pipe.poll():
            pipe.send(asdict(compactor.totals))
            await asyncio.sleep(0.5)
        loop.cancel()
        await runtime.mongo.close()

    asyncio.run(run())


async def benchmark(settings: Settings, pipe: Connection, load: Load) -> Run:
    """Writes for ``load.seconds``, reporting every few seconds, then waits for the backlog to drain."""
    run = Run()
    start = time.monotonic()
    writer = asyncio.create_task(write(settings, load, run))
    print(f"{'s':>5} {'written/s':>10} {'merged/s':>10} {'backlog':>8} {'deleted':>8} {'failed':>6}")
    last = (0, 0, start)
    deadline = start + 5 * load.seconds
    while not writer.done() or (run.merged("fresh") < run.segments and time.monotonic() < deadline):
        await asyncio.sleep(REPORT_SECONDS if not writer.done() else 1.0)
        while pipe.poll():
            run.totals = pipe.recv()
        now, backlog = time.monotonic(), run.segments - run.merged("fresh")
        if not writer.done():
            run.backlog.append(backlog)
            run.merged_writing = run.merged()
        span = now - last[2]
        rates = ((run.readings - last[0]) / span, (run.merged() - last[1]) / span)
        print(
            f"{now - start:5.0f} {rates[0]:10,.0f} {rates[1]:10,.0f} "
            f"{backlog:8,} {run.merged('deleted'):8,} {run.merged('failed'):6}"
        )
        last = (run.readings, run.merged(), now)
    await writer
    run.seconds = time.monotonic() - start
    return run


def summary(run: Run, load: Load) -> None:
    ingest = run.readings / load.seconds
    merged = run.merged_writing / max(load.seconds - COMPACTION.settle_seconds, 1e-9)
    half = max(len(run.backlog) // 2, 1)
    bounded = max(run.backlog[half:] or run.backlog) <= 1.25 * max(run.backlog[:half]) + load.series
    rewritten = run.merged("readings") / max(run.merged(), 1)
    print(
        f"written {run.readings:,} readings in {run.segments:,} segments in {load.seconds:.0f} s; merged "
        f"{run.merged():,} by {run.seconds:.0f} s, written {rewritten:.1f}x by merges; "
        f"{run.merged('groups'):,} merges, {run.merged('lost')} lost races, {run.merged('failed')} failed"
    )
    verdict = "keeps up, backlog bounded" if bounded else "falls behind, backlog growing"
    print(
        f"compaction {merged:,.0f} readings/s while ingest wrote {ingest:,.0f} records/s "
        f"(target {TARGET:,}): {verdict} "
        f"(peak {max(run.backlog):,} segments, drained {run.seconds - load.seconds:.0f} s after the writers)"
    )


def merge_alone(load: Load, segments_per_merge: int = 20) -> float:
    """Readings/s the merge's own Python work handles: decode stored segments, merge, encode."""
    series = [Series("bench", "plant", "events", "dev", f"m-{i}") for i in range(50)]
    stored = [[to_document(s) for s in flush(series, n, 0, load.readings)] for n in range(segments_per_merge)]
    groups = [[documents[i] for documents in stored] for i in range(len(series))]
    start = time.process_time()
    for group in groups:
        [to_document(segment) for segment in merge([from_document(document) for document in group])]
    return len(series) * segments_per_merge * load.readings / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=TARGET, help="records/s the writers aim at")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--readings", type=int, default=READINGS, help="readings a segment holds")
    arguments = parser.parse_args()
    with local_servers() as (settings, servers):
        asyncio.run(indexes(settings))
        ours, theirs = multiprocessing.Pipe()
        child = multiprocessing.get_context("fork").Process(target=compact, args=(settings, theirs))
        child.start()
        assert child.pid is not None
        meter = CpuMeter({"MongoDB server": server_pid(servers, "mongo"), "compactor": child.pid})
        meter.start()
        try:
            wall = time.monotonic()
            load = Load(arguments.series, arguments.rate, arguments.seconds, arguments.readings)
            alone = merge_alone(load)
            print(f"merge alone (decode, merge, encode): {alone:,.0f} readings/s of one core")
            run = asyncio.run(benchmark(settings, ours, load))
            wall = time.monotonic() - wall
            used = meter.stop()
            print("CPU: " + ", ".join(f"{name} {seconds / wall:.2f} cores" for name, seconds in used.items()))
            summary(run, load)
        finally:
            ours.send("stop")
            child.join(timeout=60)


async def indexes(settings: Settings) -> None:
    client = connect(settings)
    await ensure_indexes(database(client, settings))
    await client.close()


if __name__ == "__main__":
    main()
