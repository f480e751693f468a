"""A short run of the consumer fuzzer (``make fuzz`` runs it long) against the service processes:
hostile records on every consumed topic; each one a consumer must refuse is dead-lettered with
a reason, no service dies and none stalls (see ``tests/fuzz/consumers.py``)."""

from __future__ import annotations

import pytest

from exporter.local.services import LocalServices
from tests.fuzz.consumers import fuzz_consumers

pytestmark = pytest.mark.servers


async def test_hostile_records_are_dead_lettered_and_no_consumer_stalls(services: LocalServices) -> None:
    report = await fuzz_consumers(services, seed=20261206, per_topic=25, seconds=90)
    assert sum(report.refused.values()) > 0, report.summary()
    assert report.ok, (
        f"{report.summary()}\nmissing: {report.missing}\nunexplained: {report.unexplained}\n"
        f"stalled: {report.stalled}\ncrashed: {report.crashed}"
    )
