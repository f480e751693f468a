"""The chaos harness's checks over small hand-made data: what must pass passes, each breach fails."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.chaos import invariants as check
from tests.chaos.__main__ import Options
from tests.chaos.faults import Kind, plan
from tests.chaos.invariants import Grid, StoredObject

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DATA = b"time,value\n1,2\n"


def job(job_id: str = "r1-a", status: str = "done", **fields: Any) -> dict[str, Any]:
    return {
        "_id": job_id,
        "requestId": job_id.split("-")[0],
        "scheduledAt": T0,
        "status": status,
        "error": None,
        "files": [],
        "rowCount": 0,
        "notifications": [],
        **fields,
    }


def file(key: str, data: bytes = DATA, rows: int = 1, name: str = "a.csv") -> dict[str, Any]:
    checksum = f"sha256:{hashlib.sha256(data).hexdigest()}"
    return {"key": key, "name": name, "sizeInBytes": len(data), "rows": rows, "checksum": checksum}


def test_every_scheduled_time_fired_once_passes() -> None:
    times = frozenset({T0, T0 + timedelta(seconds=30)})
    jobs = [job("r1-a", scheduledAt=T0), job("r1-b", scheduledAt=T0 + timedelta(seconds=30))]
    verdict = check.fired_once({"r1": Grid(times)}, jobs, {"r1-a": 1, "r1-b": 1})
    assert verdict.ok
    assert verdict.checked == 2


def test_a_missed_run_an_off_grid_run_and_a_second_announcement_fail() -> None:
    times = frozenset({T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)})
    jobs = [job("r1-a", scheduledAt=T0), job("r1-c", scheduledAt=T0 + timedelta(seconds=45))]
    verdict = check.fired_once({"r1": Grid(times)}, jobs, {"r1-a": 2})
    assert len(verdict.lost) == 2  # 30 s and 60 s
    assert len(verdict.duplicated) == 2  # off the grid at 45 s; r1-a announced twice


def test_an_edited_requests_missing_run_is_not_lost_but_one_time_requests_need_one_job() -> None:
    grids = {"r1": Grid(frozenset({T0}), complete=False), "r2": Grid(once=True), "r3": Grid(once=True)}
    jobs = [job("r2-a"), job("r3-a"), job("r3-b")]
    verdict = check.fired_once(grids, jobs, {})
    assert not verdict.lost
    assert verdict.duplicated == ["r3: one-time request with 2 jobs"]
    assert check.fired_once({"r4": Grid(once=True)}, [], {}).lost == ["r4: one-time request without a job"]


def test_jobs_must_end_and_failures_say_why() -> None:
    assert check.jobs_terminal([job(), job("r1-b", "cancelled"), job("r1-c", "failed", error="no data")]).ok
    verdict = check.jobs_terminal(
        [job("r1-a", "inProgress"), job("r1-b", "notProcessed"), job("r1-c", "failed", error=" ")],
        expected_ids=["adhoc-1"],
    )
    assert len(verdict.stuck) == 2
    assert len(verdict.wrong) == 1
    assert verdict.lost == ["adhoc-1: no job"]


def test_done_files_exist_with_their_size_and_checksum() -> None:
    files = [file("t/r1/r1-a/a.csv"), file("t/r1/r1-a/b.csv", name="b.csv")]
    objects = {f["key"]: StoredObject(len(DATA), DATA) for f in files}
    assert check.files_match([job(files=files, rowCount=2)], objects).ok


def test_a_missing_a_changed_and_a_stray_object_fail() -> None:
    files = [file("t/r1/r1-a/a.csv"), file("t/r1/r1-a/b.csv", name="b.csv")]
    objects = {
        "t/r1/r1-a/b.csv": StoredObject(len(DATA), b"time,value\n1,3\n"),  # same size, other bytes
        "t/r1/r1-z/a.csv": StoredObject(3, None),
    }
    verdict = check.files_match([job(files=files, rowCount=3)], objects)
    assert len(verdict.lost) == 1
    assert len(verdict.duplicated) == 1
    assert len(verdict.wrong) == 2  # the checksum, and 2 rows in files against 3 on the job


def test_rows_must_match_the_known_data() -> None:
    assert check.rows_match([job(rowCount=5), job("r2-a", rowCount=9)], {"r1": 5}).ok
    assert not check.rows_match([job(rowCount=4)], {"r1": 5}).ok


def test_each_message_sent_once_or_failed_with_a_reason() -> None:
    entries = [
        {"index": 0, "medium": "email", "status": "sent"},
        {"index": 1, "medium": "discord", "status": "failed", "lastError": "HTTP 500"},
        {"index": 2, "medium": "discord", "status": "skipped"},
    ]
    received = {"email": Counter({"r1-a.0|ops@localhost": 1}), "discord": Counter()}
    assert check.notified_once([job(notifications=entries)], received).ok


def test_a_lost_a_doubled_a_stuck_and_an_unexplained_message_fail() -> None:
    entries = [
        {"index": 0, "medium": "email", "status": "sent"},
        {"index": 1, "medium": "discord", "status": "failed", "lastError": ""},
        {"index": 2, "medium": "discord", "status": "retrying"},
        {"index": 3, "medium": "discord", "status": "sent"},
    ]
    received = {"email": Counter(), "discord": Counter({"r1-a.3": 2})}
    verdict = check.notified_once([job(notifications=entries)], received)
    assert (len(verdict.lost), len(verdict.duplicated), len(verdict.stuck), len(verdict.wrong)) == (
        1,
        1,
        1,
        1,
    )


def test_a_cancelled_jobs_message_left_pending_is_wrong() -> None:
    entries = [{"index": 0, "medium": "email", "status": "pending"}]
    assert check.notified_once(
        [job(status="cancelled", notifications=[{**entries[0], "status": "skipped"}])], {}
    ).ok
    verdict = check.notified_once([job(status="cancelled", notifications=entries)], {})
    assert verdict.wrong == ["r1-a.0: its job is cancelled, the message stays pending"]


def test_each_render_announced_once() -> None:
    assert check.rendered_once([job(), job("r1-b", "cancelled")], {"r1-a": 1}).ok
    verdict = check.rendered_once([job(), job("r1-b")], {"r1-a": 2})
    assert len(verdict.duplicated) == 1
    assert len(verdict.lost) == 1


def test_one_iam_event_per_change() -> None:
    assert check.iam_once({"r1": 2}, {("r1", 1): 1, ("r1", 2): 1}).ok
    verdict = check.iam_once({"r1": 3}, {("r1", 1): 2, ("r1", 3): 1, ("r1", 4): 1})
    assert verdict.lost == ["r1 v2"]
    assert len(verdict.duplicated) == 2


def test_grants_and_readings_stored_exactly() -> None:
    assert check.grants_applied({"g1": 3}, {"g1": 3}).ok
    assert not check.grants_applied({"g1": 3, "g2": 1}, {"g1": 2}).ok
    assert check.ingested_once({"d1": 40}, {"d1": 40, "other": 5}).ok
    verdict = check.ingested_once({"d1": 40, "d2": 20}, {"d1": 60, "d2": 10})
    assert len(verdict.duplicated) == 1
    assert len(verdict.lost) == 1


def test_the_fault_plan_is_the_seeds_and_stays_in_the_run() -> None:
    first = plan(7, 600)
    assert first == plan(7, 600)
    assert first != plan(8, 600)
    assert all(20 <= fault.at < 600 for fault in first)
    assert {fault.kind for fault in first} == set(Kind)  # ten minutes see every kind
    assert all(b.at >= a.at + a.seconds for a, b in itertools.pairwise(first))  # one at a time


@pytest.mark.parametrize(
    ("name", "value"), [("minutes", 0), ("minutes", 10_000), ("exports", 0), ("exports", 10**9), ("seed", -1)]
)
def test_options_out_of_bounds_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValidationError):
        Options.model_validate({name: value})
