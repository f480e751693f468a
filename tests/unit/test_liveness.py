"""Liveness by progress, the health file, and the start-up wait for dependencies."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from exporter.liveness import (
    EXIT_STALLED,
    Liveness,
    Readiness,
    describe_failure,
    exit_when_stalled,
    read_report,
    write_reports,
)
from exporter.local.servers import free_ports
from exporter.runtime import DependencyUnavailable, mongo_hosts, until_answers
from exporter.settings import MongoSettings, Settings
from exporter.settings.process import LivenessSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_loop_is_alive_until_its_next_pass_is_later_than_its_interval_and_the_slack() -> None:
    clock = Clock()
    liveness = Liveness(stall_seconds=60, busy_seconds=3600, clock=clock)
    liveness.beat("scheduler sweep", 10)

    clock.now += 70
    assert liveness.report() == {"status": "ok", "loops": ["scheduler sweep"], "stalled": {}}
    clock.now += 5
    assert liveness.report()["stalled"] == {"scheduler sweep": 5.0}
    liveness.beat("scheduler sweep", 10)
    assert liveness.report()["status"] == "ok"


def test_a_consumer_waiting_for_records_is_alive_and_one_stuck_on_a_message_is_not() -> None:
    clock = Clock()
    liveness = Liveness(stall_seconds=60, busy_seconds=100, clock=clock)
    with liveness.working("consumer export.requested"):
        clock.now += 50
        with liveness.working("consumer export.requested"):  # a second one in hand meanwhile
            clock.now += 60
            assert liveness.stalled() == {"consumer export.requested": 10.0}  # timed from the oldest
    assert liveness.stalled() == {}
    clock.now += 10_000  # idle for long: still alive
    assert liveness.report() == {"status": "ok", "loops": ["consumer export.requested"], "stalled": {}}


async def test_the_health_file_is_ok_while_fresh_and_goes_away_when_its_writer_stops(tmp_path: Path) -> None:
    clock = Clock()
    liveness = Liveness(stall_seconds=1, busy_seconds=1, clock=clock)
    path = tmp_path / "health" / "renderer.json"
    writer = asyncio.create_task(write_reports(liveness, path, 0.01))
    while not path.exists():
        await asyncio.sleep(0.01)
    assert read_report(path, max_age=60) is None

    with liveness.working("consumer export.requested"):
        clock.now += 5
        while "stalled" not in json.loads(path.read_text())["status"]:
            await asyncio.sleep(0.01)
        assert read_report(path, max_age=60) == "stalled: consumer export.requested (+4.0 s)"
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert not path.exists()
    assert "no health report" in (read_report(path, max_age=60) or "")


def test_a_health_file_that_stopped_changing_is_not_ok(tmp_path: Path) -> None:
    path = tmp_path / "notifier.json"
    path.write_text(json.dumps({"status": "ok", "stalled": {}, "written": 100.0}))
    assert read_report(path, max_age=60, now=lambda: 150.0) is None
    assert read_report(path, max_age=60, now=lambda: 161.0) == (
        "health report 61 s old (the process or its event loop is stuck)"
    )


@pytest.mark.parametrize(
    "worst",
    [
        {"stall_seconds": 0.5},
        {"stall_seconds": 3601},
        {"busy_seconds": 86_401},
        {"file_interval_seconds": 0},
        {"dependency_wait_seconds": 0},
        {"dependency_attempt_seconds": 301},
        {"readiness_interval_seconds": 0},
        {"readiness_interval_seconds": 1e9},
        {"readiness_timeout_seconds": 0},
        {"readiness_timeout_seconds": 61},
        {"exit_after_seconds": 0},
        {"exit_after_seconds": 86_401},
    ],
)
def test_liveness_settings_refuse_values_out_of_bounds(worst: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        LivenessSettings.model_validate(worst)


async def test_a_dependency_is_waited_for_with_one_line_per_reason_then_given_up_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = 0

    async def refused() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError(111, "Connection refused")

    settings = LivenessSettings(dependency_wait_seconds=1, dependency_attempt_seconds=0.1)
    with caplog.at_level(logging.WARNING), pytest.raises(DependencyUnavailable) as refusal:
        # A name without a port (a DNS seed list) is not connected to first.
        await until_answers("Kafka", "kafka-seeds", refused, settings)

    assert str(refusal.value) == (
        "Kafka at kafka-seeds did not answer within 1 s: "
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert attempts == 2  # after pauses of 0.5 s, then 1 s would pass the wait
    assert [r.getMessage() for r in caplog.records] == [
        "waiting for Kafka at kafka-seeds: ConnectionRefusedError: [Errno 111] Connection refused"
    ]


async def test_an_address_that_refuses_connections_is_said_at_once(caplog: pytest.LogCaptureFixture) -> None:
    (closed,) = free_ports(1)
    attempted = False

    async def attempt() -> None:
        nonlocal attempted
        attempted = True

    settings = LivenessSettings(dependency_wait_seconds=1, dependency_attempt_seconds=0.1)
    with caplog.at_level(logging.WARNING), pytest.raises(DependencyUnavailable):
        await until_answers("S3", f"127.0.0.1:{closed}", attempt, settings)

    assert not attempted
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(f"waiting for S3 at 127.0.0.1:{closed}: ConnectionRefusedError: ")
    )


async def test_a_dependency_that_answers_late_is_waited_for() -> None:
    attempts = 0

    async def second_time_lucky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.sleep(1)  # hangs: the attempt's timeout ends it

    settings = LivenessSettings(dependency_attempt_seconds=0.1)
    await until_answers("S3", "minio", second_time_lucky, settings)
    assert attempts == 2


def test_failures_are_described_in_one_bounded_line() -> None:
    assert describe_failure(TimeoutError(), 10) == "no answer within 10 s"
    long = RuntimeError("127.0.0.1:1: refused" + "x" * 1000 + "\nTopology Description: ...")
    assert len(described := describe_failure(long, 10)) == 300
    assert described.startswith("RuntimeError: 127.0.0.1:1: refused")


def test_the_mongo_address_in_logs_has_no_credentials() -> None:
    uri = SecretStr("mongodb://app:s3cret@db1:27017,db2:27017/exporter?replicaSet=rs0")
    assert mongo_hosts(Settings(mongo=MongoSettings(uri=uri))) == "db1:27017,db2:27017"


async def test_readiness_is_liveness_and_every_dependency_answering_its_latest_check() -> None:
    clock = Clock()
    liveness = Liveness(stall_seconds=60, busy_seconds=100, clock=clock)
    down = {"mongodb": False}

    async def mongodb() -> None:
        if down["mongodb"]:
            raise ConnectionRefusedError(111, "Connection refused")

    async def kafka() -> None:
        pass

    readiness = Readiness(liveness, {"mongodb": mongodb, "kafka": kafka}, interval=5, timeout=1)
    assert readiness.report()["ready"] is False  # not checked yet
    assert readiness.report()["dependencies"] == {"mongodb": "not checked yet", "kafka": "not checked yet"}
    await readiness.check()
    assert readiness.report() == {
        "status": "ok",
        "loops": [],
        "stalled": {},
        "ready": True,
        "dependencies": {"mongodb": "ok", "kafka": "ok"},
    }
    down["mongodb"] = True
    assert readiness.report()["ready"] is True  # a probe reads the latest check; it runs none
    await readiness.check()
    report = readiness.report()
    assert report["ready"] is False
    assert report["dependencies"]["mongodb"] == "ConnectionRefusedError: [Errno 111] Connection refused"
    down["mongodb"] = False
    await readiness.check()
    assert readiness.report()["ready"] is True
    with liveness.working("consumer export.requested"):  # alive is part of ready
        clock.now += 101
        assert readiness.report()["ready"] is False


async def test_a_check_that_hangs_is_not_ready_and_is_never_started_twice_at_once() -> None:
    started, release = 0, asyncio.Event()

    async def hangs() -> None:
        nonlocal started
        started += 1
        await release.wait()

    readiness = Readiness(Liveness(60, 100), {"s3": hangs}, interval=5, timeout=0.05)
    await readiness.check()
    await readiness.check()
    assert readiness.report()["dependencies"] == {"s3": "no answer within 0.05 s"}
    assert started == 1
    release.set()
    await readiness.check()  # the first one answered: that is the latest result
    assert readiness.report()["ready"] is True
    assert started == 1
    await readiness.check()
    assert started == 2


def test_a_worker_is_ready_only_when_its_report_says_so(tmp_path: Path) -> None:
    path = tmp_path / "renderer.json"
    report = {"status": "ok", "stalled": {}, "written": 100.0, "ready": False}
    report["dependencies"] = {"mongodb": "no answer within 2 s", "kafka": "ok"}
    path.write_text(json.dumps(report))
    assert read_report(path, max_age=60, now=lambda: 101.0) is None  # alive
    assert read_report(path, max_age=60, now=lambda: 101.0, ready=True) == (
        "not ready: mongodb: no answer within 2 s"
    )
    path.write_text(json.dumps({**report, "ready": True}))
    assert read_report(path, max_age=60, now=lambda: 101.0, ready=True) is None


class Exited(Exception):
    pass


async def test_a_process_stalled_for_exit_after_seconds_ends_itself_to_be_restarted() -> None:
    clock = Clock()
    liveness = Liveness(stall_seconds=60, busy_seconds=100, clock=clock)
    statuses: list[int] = []

    def end(status: int) -> None:
        statuses.append(status)
        raise Exited

    watch = asyncio.create_task(exit_when_stalled(liveness, after=30, interval=0.001, end=end))
    liveness.beat("scheduler firing", 1)
    clock.now += 62  # stalled by 1 s
    await asyncio.sleep(0.05)
    liveness.beat("scheduler firing", 1)  # moving again: the count starts over
    await asyncio.sleep(0.05)
    clock.now += 62
    await asyncio.sleep(0.05)
    clock.now += 29
    await asyncio.sleep(0.05)
    assert not watch.done()  # stalled for 29 s
    clock.now += 1
    with pytest.raises(Exited):
        await asyncio.wait_for(watch, 10)
    assert statuses == [EXIT_STALLED]
