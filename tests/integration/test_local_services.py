"""The services' launcher: what a service started by it reads as its configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.local.servers import LocalServers
from exporter.local.services import LocalServices

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
