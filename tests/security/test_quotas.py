"""Quotas without holes: active requests are capped per user and per tenant, even under
concurrent creates, and the scheduler applies the queued-jobs quota and one-job-per-target to
the runs it fires, recording a run it may not queue as ``skipped`` with the reason."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx

from exporter.adapters.mongo.caps import Cap, CapReached
from exporter.adapters.mongo.client import REQUESTS, connect_blocking
from exporter.contracts.base import utcnow
from exporter.domain.access import Action
from exporter.runtime import Runtime
from exporter.service_layer.group_commit import GroupCommit
from exporter.settings import GrantSettings, Settings
from scheduler.admission import Admission
from scheduler.firing import fire_due, shard_order
from tests.integration.api_server import isolated, serving
from tests.request_cases import SEED_000


def caller(url: str, user: str, tenant: str = "acme") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"X-User-Id": user, "X-Tenant-Id": tenant}, timeout=30)


def body(target: str, **changes: Any) -> dict[str, Any]:
    created = copy.deepcopy(SEED_000)
    created["items"][0]["params"]["target"]["value"] = f"urn:cpt:smartdevice:nid:{target}:onoff"
    return {**created, **changes}


def one_time(target: str, start_at: str) -> dict[str, Any]:
    later = body(target, type="oneTime", startAt=start_at)
    later.pop("periodicity")
    return later


async def creates(api: httpx.AsyncClient, count: int, prefix: str) -> list[httpx.Response]:
    """``count`` creates at once: recurring ones and one-time ones due later, which count alike."""
    later = (utcnow() + timedelta(days=1)).isoformat()
    bodies = [body(f"{prefix}{i}") if i % 2 else one_time(f"{prefix}{i}", later) for i in range(count)]
    return await asyncio.gather(*(api.post("/exports", json=b) for b in bodies))


def statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


async def test_active_requests_are_capped_per_user_and_per_tenant_under_concurrent_creates(
    servers: Settings,
) -> None:
    settings = isolated(servers, max_active_requests_per_user=4, max_active_requests_per_tenant=6)
    async with (
        serving(settings) as url,
        caller(url, "alice") as alice,
        caller(url, "bob") as bob,
        caller(url, "carol") as carol,
        caller(url, "dave", tenant="other") as dave,
    ):
        answers = await creates(alice, 12, "a")
        assert statuses(answers) == {201: 4, 429: 8}
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert refused.json() == {"message": "Maximum number of active export requests reached (4 per user)"}
        assert refused.headers["Retry-After"] == str(settings.api.quota_retry_after_seconds)

        others = [*await creates(bob, 5, "b"), *await creates(carol, 5, "c")]
        assert statuses(others) == {201: 2, 429: 8}
        assert {a.json()["message"] for a in others if a.status_code == 429} >= {
            "Maximum number of active export requests reached (6 per tenant)"
        }
        assert statuses(await creates(dave, 2, "d")) == {201: 2}

        # A deleted request is no longer active: its room is free again.
        first = next(answer for answer in answers if answer.status_code == 201).json()
        assert (await alice.delete(f"/exports/{first['id']}")).status_code == 200
        assert statuses(await creates(alice, 3, "e")) == {201: 1, 429: 2}


async def test_the_scheduler_records_runs_past_the_quota_or_on_a_busy_target_as_skipped(
    servers: Settings,
) -> None:
    settings = isolated(servers, max_active_jobs_per_user=2, one_active_job_per_target=True)
    later = utcnow() + timedelta(hours=1)
    async with serving(settings) as url, caller(url, "alice") as alice, caller(url, "bob") as bob:
        # alice: three one-time requests due in an hour, on three targets; her quota is 2.
        bodies = [one_time(f"q{i}", later.isoformat()) for i in range(3)]
        quota = [(await alice.post("/exports", json=b)).json() for b in bodies]
        # bob: a one-time request queued at once on target "shared", and a daily one on it too.
        queued = (await bob.post("/exports", json=one_time("shared", utcnow().isoformat()))).json()
        [in_flight] = (await bob.get(f"/exports/{queued['id']}/jobs")).json()["items"]
        daily = (await bob.post("/exports", json=body("shared", periodicity="P1D"))).json()

        runtime = Runtime.build(settings)
        await runtime.prepare()
        try:
            fired_at = utcnow() + timedelta(days=3)
            assert await fire_due(runtime, shard_order(), fired_at) == 2
        finally:
            await runtime.close()

        histories = [(await alice.get(f"/exports/{r['id']}/jobs")).json()["items"] for r in quota]
        assert sorted(job["status"] for [job] in histories) == ["notProcessed", "notProcessed", "skipped"]
        [skipped] = next(history for history in histories if history[0]["status"] == "skipped")
        assert skipped["error"] == (
            "skipped: alice already had 2 exports queued or running (the queued-jobs quota)"
        )
        assert skipped["completedAt"] is not None

        [run] = (await bob.get(f"/exports/{daily['id']}/jobs")).json()["items"]
        assert run["status"] == "skipped"
        assert run["error"] == f"skipped: job '{in_flight['id']}' on the same target was still notProcessed"
        assert run["notifications"] == []
        # The series moves on: the next run is after the one skipped.
        shown = (await bob.get(f"/exports/{daily['id']}")).json()
        assert shown["status"] == "active"
        assert shown["nextRunTimes"][0] > fired_at.isoformat().replace("+00:00", "Z")


def job(job_id: str, request_id: str, owner: str = "alice", target: str = "t1") -> dict[str, Any]:
    queued = {"_id": job_id, "requestId": request_id, "tenant": "acme", "owner": owner, "targets": [target]}
    return queued | {"status": "notProcessed"}


def test_the_batch_rule_counts_what_the_batch_queues_and_lets_catch_up_runs_go_together() -> None:
    admission = Admission(max_active_per_user=3, one_per_target=True, active={("acme", "alice"): 1})
    admission.note_busy([{**job("old", "r9", target="t9"), "status": "inProgress"}])

    # catchUp "all": three runs of one request on one target go together, within the quota.
    assert admission.refusal(job("r1-a", "r1")) is None
    assert admission.refusal(job("r1-b", "r1")) is None
    assert admission.refusal(job("r1-c", "r1", owner="bob")) is None
    # Another request on that target waits for them, as for a job in the store.
    assert admission.refusal(job("r2", "r2", owner="bob")) == (
        "skipped: job 'r1-c' on the same target was still notProcessed"
    )
    assert admission.refusal(job("r9-b", "r9", owner="bob", target="t9")) == (
        "skipped: job 'old' on the same target was still inProgress"
    )
    # alice: one in the store and two queued by this batch make three.
    assert admission.refusal(job("r3", "r3", target="t3")) == (
        "skipped: alice already had 3 exports queued or running (the queued-jobs quota)"
    )


async def test_a_cap_holds_across_writers_that_commit_at_once(runtime: Runtime) -> None:
    """Two API processes each have their own group commit: their counters conflict, so the cap
    still holds over both."""
    settings = runtime.settings
    database = settings.mongo.database
    writers = [GroupCommit(lambda: connect_blocking(settings), database, lambda _: None) for _ in range(2)]
    query = {"tenant": "acme", "schedule.nextRunAt": {"$ne": None}}
    cap = Cap("requests\x1facme", "active", REQUESTS, query, 7, "full")

    async def create(writer: GroupCommit, index: int) -> bool:
        document = {"_id": f"r{index}", "tenant": "acme", "schedule": {"nextRunAt": utcnow()}}
        try:
            await writer.insert([(REQUESTS, document)], [cap])
        except CapReached:
            return False
        return True

    try:
        created = await asyncio.gather(*(create(writers[i % 2], i) for i in range(20)))
    finally:
        for writer in writers:
            await writer.close()
    assert Counter(created) == {True: 7, False: 13}
    assert await runtime.db[REQUESTS].count_documents({}) == 7


async def test_a_grantees_runs_count_against_the_owners_quota(servers: Settings) -> None:
    """Runs by someone granted ``run`` are the owner's jobs: they cannot pass the owner's quota."""
    grants = [GrantSettings(tenant="acme", subjects=["user:bob"], actions=[Action.READ, Action.RUN])]
    settings = isolated(servers, grants=grants, max_active_jobs_per_user=2, one_active_job_per_target=False)
    async with serving(settings) as url, caller(url, "alice") as alice, caller(url, "bob") as bob:
        created = (await alice.post("/exports", json=body("GRANTED"))).json()
        runs = [await bob.post(f"/exports/{created['id']}/run") for _ in range(4)]
        assert [run.status_code for run in runs] == [202, 202, 429, 429], [run.text for run in runs]
        assert (await alice.post(f"/exports/{created['id']}/run")).status_code == 429
