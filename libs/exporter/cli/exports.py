"""``exporter exports``: export requests over the API."""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path
from typing import Any

from exporter.cli.jobs import watch_job
from exporter.cli.session import Session, bounded, read_json_object

COLUMNS = ("id", "name", "type", "status", "format.extension", "createdAt", "nextRunTimes")
WAIT_FOR_JOB_SECONDS = 120.0


def register(commands: Any) -> None:
    group = commands.add_parser("exports", help="export requests").add_subparsers(
        dest="action", required=True
    )
    create = group.add_parser("create", help="create an export request from a JSON spec")
    create.add_argument(
        "-f", "--file", required=True, type=Path, help="the spec (seed 000's body); - for stdin"
    )
    create.add_argument("--wait", action="store_true", help="watch its first job to the end")
    create.add_argument(
        "--idempotency-key", help="repeating the command with this key creates nothing twice (default: new)"
    )
    create.set_defaults(run=create_export)
    listing = group.add_parser("list", help="your export requests, a page at a time")
    listing.add_argument("--page", type=bounded(1, 1_000_000), default=1)
    listing.add_argument("--page-size", type=bounded(1, 1000), default=50)
    listing.add_argument("--type", choices=("oneTime", "recurring"))
    listing.add_argument("--status", choices=("active", "paused", "finished", "deleted"))
    listing.set_defaults(run=list_exports)
    for name, handler, text in (
        ("get", get_export, "one export request"),
        ("delete", delete_export, "delete (soft) an export request"),
    ):
        command = group.add_parser(name, help=text)
        command.add_argument("id")
        command.set_defaults(run=handler)
    edit = group.add_parser("edit", help="replace an export request's spec (a new version)")
    edit.add_argument("id")
    edit.add_argument("-f", "--file", required=True, type=Path, help="the new spec; - for stdin")
    edit.set_defaults(run=edit_export)
    run = group.add_parser("run", help="queue a run now")
    run.add_argument("id")
    run.add_argument("--wait", action="store_true", help="watch the job to the end")
    run.set_defaults(run=run_export)


def create_export(session: Session, args: argparse.Namespace) -> int:
    spec = read_json_object(args.file)
    key = args.idempotency_key or uuid.uuid4().hex
    created = session.api.call("POST", "/exports", json=spec, headers={"Idempotency-Key": key})
    if not args.wait:
        session.show(created, COLUMNS)
        return 0
    session.note(f"created {created['id']}; waiting for its first job")
    return watch_job(session, first_job(session, created["id"]))


def first_job(session: Session, export_id: str) -> str:
    """The id of the request's first job: a one-time request due now has it at once, a later
    or recurring one once the scheduler queues it."""
    deadline = time.monotonic() + WAIT_FOR_JOB_SECONDS
    while time.monotonic() < deadline:
        page = session.api.call("GET", f"/exports/{export_id}/jobs", params={"pageSize": 1})
        if page["items"]:
            return str(page["items"][-1]["id"])
        time.sleep(0.5)
    raise TimeoutError(f"export {export_id} had no job after {WAIT_FOR_JOB_SECONDS:.0f} s (scheduled later?)")


def list_exports(session: Session, args: argparse.Namespace) -> int:
    params = {"page": args.page, "pageSize": args.page_size, "type": args.type, "status": args.status}
    answer = session.api.call("GET", "/exports", params={k: v for k, v in params.items() if v is not None})
    session.show(answer, COLUMNS)
    return 0


def get_export(session: Session, args: argparse.Namespace) -> int:
    session.show(session.api.call("GET", f"/exports/{args.id}"))
    return 0


def edit_export(session: Session, args: argparse.Namespace) -> int:
    session.show(session.api.call("PUT", f"/exports/{args.id}", json=read_json_object(args.file)))
    return 0


def delete_export(session: Session, args: argparse.Namespace) -> int:
    session.show(session.api.call("DELETE", f"/exports/{args.id}"))
    return 0


def run_export(session: Session, args: argparse.Namespace) -> int:
    job = session.api.call("POST", f"/exports/{args.id}/run")
    if args.wait:
        return watch_job(session, job["id"])
    session.show(job)
    return 0
