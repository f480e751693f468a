"""``make run``'s supervision: an exited process is restarted with backoff, the others keep running."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from exporter.local.servers import LocalServers, ProcessGroup, ProcessSpec
from exporter.local.supervisor import RestartPolicy, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


class Sleepers(ProcessGroup):
    kind = "service"

    def _define(self) -> list[ProcessSpec]:
        return [
            ProcessSpec(name=name, port=None, launch=lambda: SLEEPER, probe=lambda: "asleep")
            for name in ("renderer", "notifier")
        ]


class SmtpOnly(LocalServers):
    def _define(self) -> list[ProcessSpec]:
        return [self._smtp()]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def later(supervisor: Supervisor, clock: Clock, seconds: float) -> list[str]:
    """Lets ``seconds`` pass on the supervisor's clock, then has it check."""
    clock.now += seconds
    return supervisor.check()


def killed(group: ProcessGroup, name: str) -> int:
    """SIGKILLs ``name`` and waits until the group sees it exited; returns its PID."""
    pid = group.status()[name]
    assert pid is not None
    group.signal(name, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while name not in group.exited():
        assert time.monotonic() < deadline, f"{name} did not exit"
        time.sleep(0.02)
    return pid


def test_an_exited_service_is_restarted_with_a_doubling_pause_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    group, clock, lines = Sleepers(tmp_path), Clock(), list[str]()
    group.start(timeout=30)
    supervisor = Supervisor([group], clock=clock, say=lines.append)
    notifier = group.status()["notifier"]
    try:
        first = killed(group, "renderer")
        assert supervisor.check() == []  # noticed; its pause of 1 s has not passed
        assert group.status()["renderer"] is None
        later(supervisor, clock, 1)
        second = group.status()["renderer"]
        assert second not in (None, first)
        assert "renderer service exited (killed by SIGKILL); restarted after 1 s" in lines[0]
        assert "(restart 1)" in lines[0]

        killed(group, "renderer")  # again at once: the pause doubles
        supervisor.check()
        later(supervisor, clock, 1)
        assert group.status()["renderer"] is None
        later(supervisor, clock, 1)
        assert group.status()["renderer"] is not None
        assert "(restart 2)" in lines[1]

        clock.now += 60  # a healthy minute: back to the first pause
        killed(group, "renderer")
        supervisor.check()
        later(supervisor, clock, 1)
        assert group.status()["renderer"] is not None
        assert group.restarts() == {"renderer": 3, "notifier": 0}
        assert group.status()["notifier"] == notifier
        assert len(lines) == 3
    finally:
        group.stop()
    assert supervisor.check() == ["renderer", "notifier"]  # stopped on purpose: supervision ends
    assert group.restarts() == {"renderer": 0, "notifier": 0}


def test_a_held_process_stays_down_until_released(tmp_path: Path) -> None:
    group, clock = Sleepers(tmp_path), Clock()
    group.start(timeout=30)
    supervisor = Supervisor([group], clock=clock, say=lambda _: None)
    try:
        supervisor.hold("notifier")
        killed(group, "notifier")
        supervisor.check()
        later(supervisor, clock, 100)
        assert group.status()["notifier"] is None
        supervisor.release("notifier")
        supervisor.check()
        assert group.status()["notifier"] is not None
    finally:
        group.stop()


def test_a_restart_that_fails_is_said_and_tried_again_after_a_longer_pause(tmp_path: Path) -> None:
    launches: Iterator[list[str] | Exception] = iter([SLEEPER, FileNotFoundError("weed not found"), SLEEPER])

    def launch() -> list[str]:
        command = next(launches)
        if isinstance(command, Exception):
            raise command
        return command

    class Flaky(ProcessGroup):
        def _define(self) -> list[ProcessSpec]:
            return [ProcessSpec(name="s3", port=None, launch=launch, probe=lambda: "up")]

    group, clock, lines = Flaky(tmp_path), Clock(), list[str]()
    group.start(timeout=30)
    supervisor = Supervisor([group], clock=clock, say=lines.append)
    try:
        killed(group, "s3")
        supervisor.check()
        assert later(supervisor, clock, 1) == []  # the failed launch does not end supervision
        assert lines[0].endswith("s3 process could not be restarted: weed not found")
        later(supervisor, clock, 1)
        assert group.status()["s3"] is None
        later(supervisor, clock, 1)
        assert group.status()["s3"] is not None
        assert "(restart 1)" in lines[1]
    finally:
        group.stop()


def test_a_killed_server_is_restarted_and_answers_again(settings: object, tmp_path: Path) -> None:
    smtp, clock, lines = SmtpOnly(LocalServers.test_settings(tmp_path)), Clock(), list[str]()
    smtp.start(timeout=30)
    supervisor = Supervisor([smtp], clock=clock, say=lines.append)
    try:
        killed(smtp, "smtp")
        supervisor.check()
        later(supervisor, clock, 1)
        report = smtp.wait_ready("smtp", timeout=30)
        assert report.pid == smtp.status()["smtp"]
        assert "smtp server exited (killed by SIGKILL)" in lines[0]
    finally:
        smtp.stop()


@pytest.mark.parametrize(
    "worst", [{"first_seconds": 0}, {"max_seconds": 3601}, {"first_seconds": 10, "max_seconds": 5}]
)
def test_restart_policies_out_of_bounds_are_refused(worst: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        RestartPolicy.model_validate(worst)


def test_the_pause_doubles_up_to_its_maximum() -> None:
    policy = RestartPolicy()
    assert [policy.pause(n) for n in (0, 1, 2, 4, 5, 1000)] == [1, 2, 4, 16, 30, 30]
