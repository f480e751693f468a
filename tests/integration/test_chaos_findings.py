"""What ``make chaos`` found, each as a focused test of its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.domain.job_life import DeliveryStatus, JobStatus
from exporter.runtime import Runtime
from tests.integration.notifier_support import finished_job, make_notifier

pytestmark = pytest.mark.servers


async def test_a_cancelled_jobs_messages_are_recorded_skipped(runtime: Runtime, tmp_path: Path) -> None:
    message = {"policy": "always", "medium": "email", "recipients": ["ops@example.com"]}
    spec, _ = await finished_job(runtime, [message], tmp_path, status=JobStatus.CANCELLED)
    notifier = make_notifier(runtime, runtime.settings)

    await notifier.process(await runtime.jobs.get_many([spec.job_id]))

    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    # Found by make chaos: they stayed pending for good (a job cancelled before it was rendered).
    assert [entry.status for entry in job.notifications] == [DeliveryStatus.SKIPPED]
