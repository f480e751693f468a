"""The services' launcher: what a service started by it reads as its configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.local import __main__ as local_main
from exporter.local.demo import POINTS, DemoTimeout, ingested
from exporter.local.servers import LocalServers
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic

CHILD_SETTINGS = "import json; from exporter.settings import Settings; print(json.dumps(Settings().to_env()))"


def test_a_service_reads_exactly_the_settings_it_was_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = LocalServers.test_settings(tmp_path)
    settings = base.model_copy(
        update={
            "mongo": base.mongo.model_copy(update={"database": "elsewhere"}),
            "scheduler": base.scheduler.model_copy(update={"poll_interval_seconds": 0.1}),
        }
    )
    # This process's own variables must not leak into the child's settings.
    monkeypatch.setenv("EXPORTER_SMTP__USERNAME", "stray")
    monkeypatch.setenv("EXPORTER_MONGO__DATABASE", "stray")

    child = subprocess.run(
        [sys.executable, "-c", CHILD_SETTINGS],
        env=LocalServices(settings).env(),
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(child.stdout) == settings.to_env()


async def test_the_demo_names_the_step_that_timed_out(servers: Settings) -> None:
    with pytest.raises(DemoTimeout) as timeout:
        await ingested(servers, tenant="nobody-publishes-here", seconds=0.2)

    assert str(timeout.value).startswith(
        f"storing the demo readings did not finish within 0.2 s (0 of {POINTS} stored): "
        f"the ingestor is behind on {Topic.MEASUREMENTS.value}"
    )


def test_a_failed_demo_is_reported_and_leaves_the_system_up(
    servers: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def silent_timeout(*_: object) -> str:
        raise TimeoutError  # what asyncio.timeout raises: no message at all

    monkeypatch.setattr(local_main, "run_demo", silent_timeout)
    local_main.demo(servers, LocalServices(servers))  # returns: nothing is stopped

    out = capsys.readouterr().out
    assert out.startswith("demo: TimeoutError. The servers and services stay up.\n")
    assert "The API is at" in out
