"""The renderer process as ``bench_render`` drives it: jobs published on ``export.requested``,
each job's rate, CPU and peak memory read back when it is done."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer

from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportRequested
from exporter.contracts.job import Job, JobSpec, Window
from exporter.contracts.request import ExportRequestSpec, Extension
from exporter.domain.job_life import JobStatus
from exporter.runtime import Runtime
from exporter.signing import own_producer
from exporter.topics import Topic
from tests.benchmarks.harness import CpuMeter, peak_rss, reset_peak_rss
from tests.benchmarks.render_stage import TIMEZONE

TENANT = "bench"
DEVICE = "D0CF5EFFFE26FDAB1"
METRIC = "temperature"
START = datetime(2026, 1, 1, tzinfo=UTC)
MB = 1024 * 1024


def job_spec(job_id: str, extension: Extension, rows: int, decimation: dict[str, str] | None) -> JobSpec:
    """The series' first ``rows`` readings (a reading a second) as one file."""
    end = START + timedelta(seconds=rows)
    params: dict[str, Any] = {"target": {"value": f"urn:cpt:smartdevice:nid:{DEVICE}:{METRIC}"}}
    if decimation is not None:
        params["decimation"] = decimation
    request = ExportRequestSpec.model_validate(
        {
            "name": f"bench {extension}",
            "type": "oneTime",
            "format": {"extension": extension, "timezone": TIMEZONE},
            "items": [{"params": params}],
        }
    )
    return JobSpec(
        job_id=job_id,
        request_id="bench",
        request_version=1,
        tenant=TENANT,
        owner="bench",
        scheduled_at=end,
        request=request,
        windows=[Window(item=0, from_=START, to=end)],
    )


@dataclass(frozen=True)
class Run:
    """Readings/s, and the CPU µs a reading that the store and the reading process spent on it:
    unlike rates, CPU time per reading hardly depends on what else the machine is doing."""

    rate: float
    store_us: float
    client_us: float

    def __str__(self) -> str:
        return (
            f"{self.rate:12,.0f} rows/s  CPU µs/row: store {self.store_us:5.2f}, reader {self.client_us:5.2f}"
        )


@dataclass(frozen=True)
class Export(Run):
    idle_rss: int
    peak_rss: int

    def __str__(self) -> str:
        growth = (self.peak_rss - self.idle_rss) / MB
        return f"{super().__str__()}  peak RSS {self.peak_rss / MB:.0f} MB ({growth:+.0f} MB over idle)"


def cpu_per_row(used: dict[str, float], rows: int, reader: str) -> tuple[float, float]:
    """(store, reader) CPU µs a row, from what a ``CpuMeter`` counted."""
    return used["store"] * 1e6 / rows, used[reader] * 1e6 / rows


RunT = TypeVar("RunT", bound=Run)


def faster(best: RunT | None, run: RunT) -> RunT:
    return run if best is None or run.rate > best.rate else best


@dataclass
class Renderer:
    """The renderer process, fed jobs through Kafka; each job's figures read from its document."""

    runtime: Runtime
    producer: AIOKafkaProducer
    pid: int
    store_pid: int

    async def export(
        self, extension: Extension, rows: int, job_id: str, decimation: dict[str, str] | None = None
    ) -> Export:
        """Exports the first ``rows`` readings; the rate counts readings read, not rows written."""
        spec = job_spec(job_id, extension, rows, decimation)
        await self.runtime.jobs.add(new_job_document(spec, []))
        event = ExportRequested(
            id=job_id, source="bench", subject=job_id, tenant=TENANT, actor="bench", data=spec
        )
        reset_peak_rss(self.pid)
        idle = peak_rss(self.pid)
        meter = CpuMeter({"store": self.store_pid, "renderer": self.pid})
        meter.start()
        published = utcnow()
        value, topic = json.dumps(event.to_wire()).encode(), Topic.EXPORT_REQUESTED.value
        signed = own_producer(self.runtime.settings.kafka).raw_headers(topic, value)
        await self.producer.send_and_wait(topic, value, key=job_id.encode(), headers=signed)
        async with asyncio.timeout(120 + rows / 1_000):
            job = await self._finished(job_id)
        cpu = cpu_per_row(meter.stop(), rows, "renderer")
        expected = rows if decimation is None else None
        if job.status is not JobStatus.DONE or expected not in (None, job.row_count):
            raise RuntimeError(f"{job_id}: {job.status}, {job.row_count} of {rows} rows: {job.error}")
        assert job.completed_at is not None  # a done job's
        seconds = (job.completed_at - published).total_seconds()
        return Export(rows / seconds, *cpu, idle_rss=idle, peak_rss=peak_rss(self.pid))

    async def _finished(self, job_id: str) -> Job:
        while True:
            job = await self.runtime.jobs.get(job_id)
            if job is not None and job.status.is_final:
                return job
            await asyncio.sleep(0.1)
