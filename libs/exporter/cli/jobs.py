"""``exporter jobs``: runs of an export over the API (list, get, cancel, watch), and, for
operators, the jobs that are stuck (read from MongoDB with the services' settings)."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import timedelta
from typing import Any

from rich.live import Live
from rich.text import Text

from exporter.adapters.mongo.client import JOBS, connect, database
from exporter.adapters.mongo.job_queue import JobQueue
from exporter.cli.session import Session, bounded
from exporter.contracts.base import utcnow
from exporter.domain.job_life import ACTIVE_STATUSES, JobStatus
from exporter.settings import Settings

COLUMNS = ("id", "status", "scheduledAt", "startedAt", "completedAt", "rowCount", "sizeInBytes", "error")
STUCK_LIMIT = 1000


def register(commands: Any) -> None:
    group = commands.add_parser("jobs", help="runs of an export").add_subparsers(dest="action", required=True)
    listing = group.add_parser("list", help="an export request's run history")
    listing.add_argument("--export", required=True, help="the export request's id")
    listing.add_argument("--page", type=bounded(1, 1_000_000), default=1)
    listing.add_argument("--page-size", type=bounded(1, 1000), default=50)
    listing.set_defaults(run=list_jobs)
    for name, handler, text in (("get", get_job, "one job"), ("cancel", cancel_job, "cancel a job")):
        command = group.add_parser(name, help=text)
        command.add_argument("id")
        command.set_defaults(run=handler)
    watch = group.add_parser("watch", help="live progress, then the result (exit 1 unless done)")
    watch.add_argument("id")
    watch.add_argument("--interval", type=bounded(0.1, 60, float), default=1.0, help="seconds between polls")
    watch.set_defaults(run=lambda session, args: watch_job(session, args.id, args.interval))
    stuck = group.add_parser("stuck", help="operators: running jobs past their lease, jobs queued too long")
    stuck.add_argument(
        "--queued-for", type=bounded(1, 365 * 86400, float), default=600.0, help="seconds queued to count"
    )
    stuck.set_defaults(run=stuck_jobs)


def list_jobs(session: Session, args: argparse.Namespace) -> int:
    params = {"page": args.page, "pageSize": args.page_size}
    session.show(session.api.call("GET", f"/exports/{args.export}/jobs", params=params), COLUMNS)
    return 0


def get_job(session: Session, args: argparse.Namespace) -> int:
    session.show(session.api.call("GET", f"/jobs/{args.id}"))
    return 0


def cancel_job(session: Session, args: argparse.Namespace) -> int:
    session.show(session.api.call("POST", f"/jobs/{args.id}/cancel"))
    return 0


def watch_job(session: Session, job_id: str, interval: float = 1.0) -> int:
    """Polls the job until it leaves queued/running, showing rows, bytes and rate on stderr;
    prints the final job and exits 0 only when it is done."""
    active = {status.value for status in ACTIVE_STATUSES}
    meter = Meter()
    with Live(Text(f"job {job_id}: waiting"), console=session.err, transient=True) as live:
        while (job := session.api.call("GET", f"/jobs/{job_id}"))["status"] in active:
            live.update(Text(meter.line(job, time.monotonic())))
            time.sleep(interval)
    session.show(job, () if session.format == "json" else COLUMNS)
    return 0 if job["status"] == JobStatus.DONE.value else 1


class Meter:
    """Rows and rate of a running job from successive polls. The API reports rows so far but
    no total, so the ETA shows only when the job carries an expected ``progress.totalRows``."""

    def __init__(self) -> None:
        self._first: tuple[float, int] | None = None

    def line(self, job: dict[str, Any], now: float) -> str:
        progress = job.get("progress") or {}
        rows = int(progress.get("rows") or 0)
        if self._first is None or job["status"] != JobStatus.IN_PROGRESS.value:
            self._first = (now, rows)
        began, rows_then = self._first
        rate = (rows - rows_then) / (now - began) if now > began else 0.0
        parts = [f"job {job['id']}: {job['status']}", f"{rows:,} rows", f"{rate:,.0f} rows/s"]
        if job.get("sizeInBytes"):
            parts.append(f"{int(job['sizeInBytes']):,} bytes")
        total = progress.get("totalRows")
        if isinstance(total, int) and rate > 0 and total > rows:
            parts.append(f"ETA {timedelta(seconds=round((total - rows) / rate))}")
        return " · ".join(parts)


def stuck_jobs(session: Session, args: argparse.Namespace) -> int:
    """Exit 1 when any job is stuck, so a monitor can run it as a check."""
    found = asyncio.run(find_stuck(session.settings, timedelta(seconds=args.queued_for)))
    session.show(found, ("id", "tenant", "status", "reason", "since"))
    return 1 if found else 0


async def find_stuck(settings: Settings, queued_for: timedelta) -> list[dict[str, Any]]:
    """Running jobs whose renderer stopped renewing the lease or ran past the working timeout (the
    scheduler's recovery rule, ``JobQueue.stuck``), and jobs queued longer than ``queued_for``."""
    client = connect(settings)
    try:
        db = database(client, settings)
        now = utcnow()
        timeout = timedelta(seconds=settings.scheduler.working_timeout_seconds)
        running = await JobQueue(db).stuck(now, timeout, STUCK_LIMIT)
        ids = [job.job_id for job in running]
        found = [
            _stuck(document, "lease lapsed or past the working timeout", document.get("leaseUntil"))
            async for document in db[JOBS].find({"_id": {"$in": ids}})
        ]
        queued = {"status": JobStatus.NOT_PROCESSED.value, "scheduledAt": {"$lt": now - queued_for}}
        found += [
            _stuck(document, f"queued longer than {queued_for}", document.get("scheduledAt"))
            async for document in db[JOBS].find(queued).limit(STUCK_LIMIT)
        ]
        return found
    finally:
        await client.close()


def _stuck(document: dict[str, Any], reason: str, since: Any) -> dict[str, Any]:
    return {
        "id": document["_id"],
        "tenant": document.get("tenant"),
        "requestId": document.get("requestId"),
        "status": document.get("status"),
        "reason": reason,
        "since": since.isoformat() if since is not None else None,
    }
