"""A short run of the API fuzzer (``make fuzz`` runs it long): schemathesis against the live
request-api, every operation and the stateful links; see ``tests/fuzz/api.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.settings import Settings
from tests.fuzz.api import FUZZ_AUTH, fuzz_api
from tests.integration.api_server import isolated, serving

pytestmark = pytest.mark.servers


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    settings: Settings, tmp_path: Path
) -> None:
    async with serving(isolated(settings, max_active_jobs_per_user=10_000, **FUZZ_AUTH)) as url:
        report = await fuzz_api(url, tmp_path, examples=30, seed=20261123, max_seconds=45)
    assert report.ok, report.output[-20_000:]
    assert report.cases > 0, report.output[-5_000:]
