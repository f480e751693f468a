"""The notifier's use case: each notification message of a finished job, delivered once."""

from __future__ import annotations

import logging
from datetime import timedelta

from exporter.adapters.email import SmtpMailer
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportCompleted
from exporter.contracts.job import JobSpec
from exporter.notifications.messages import Link, compose, placeholder_values
from exporter.notifications.policy import policy_applies
from exporter.runtime import Runtime

log = logging.getLogger(__name__)


def download_links(runtime: Runtime, event: ExportCompleted) -> list[Link]:
    ttl = timedelta(seconds=runtime.settings.notifier.link_ttl_seconds)
    expires_at = utcnow() + ttl
    return [
        Link(
            name=file.name, url=runtime.storage.presigned_url(file.key, ttl, file.name), expires_at=expires_at
        )
        for file in event.data.files
    ]


async def handle_export_completed(runtime: Runtime, mailer: SmtpMailer, event: ExportCompleted) -> None:
    outcome = event.data
    job = await runtime.jobs.get(outcome.job_id)
    if job is None:
        log.warning("export.completed for unknown job %s; nothing to notify", outcome.job_id)
        return
    spec = JobSpec.model_validate(job["spec"])
    links = download_links(runtime, event)
    values = placeholder_values(spec, outcome, links)
    for index, message in enumerate(spec.request.notification.messages):
        if not policy_applies(message.policy, outcome.status):
            await runtime.jobs.record_delivery(outcome.job_id, index, "skipped")
            continue
        key = f"{outcome.job_id}.{index}"
        # Claimed before sending: a redelivery or a second notifier finds it taken and stops.
        if not await runtime.jobs.claim_delivery(outcome.job_id, index, key):
            continue
        notice = compose(message, values, links)
        try:
            if message.medium != "email":
                raise NotImplementedError(f"medium '{message.medium}' is not deliverable yet")
            recipients = message.recipients or [runtime.settings.notifier.default_email_recipient]
            await mailer.send(recipients, notice, key)
        except Exception as error:
            log.warning("delivery %s failed: %s", key, error)
            await runtime.jobs.record_delivery(
                outcome.job_id, index, "failed", f"{type(error).__name__}: {error}"
            )
        else:
            await runtime.jobs.record_delivery(outcome.job_id, index, "sent")
