"""Issue 14, finding 9: nothing internal reaches a user. Job and delivery errors are safe reasons
(the detail stays in the log under the job id), header cells cannot run as formulas, and every
5xx of the API is a bare JSON message."""

from __future__ import annotations

import copy
import io
import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from pymongo.errors import AutoReconnect

from exporter.adapters.mongo.requests import RequestRepository
from exporter.domain.job_life import JobStatus
from exporter.rendering.writers import CsvWriter, Document
from exporter.rendering.xlsx import XlsxWriter
from exporter.runtime import Runtime
from exporter.settings import Settings
from renderer.export_job import handle_export_requested
from tests.integration import conftest as integration
from tests.integration.api_server import isolated, serving
from tests.integration.notifier_support import (
    ChatReceiver,
    chat_receiver,
    completed_event,
    deliveries,
    finished_job,
    make_notifier,
    notifier_settings,
)
from tests.integration.renderer_support import (
    body,
    configure,
    job_spec,
    render,
    requested,
    series_item,
)
from tests.request_cases import SEED_000

pytestmark = pytest.mark.servers
INTERNAL = "db-7.internal:27017"
START = datetime(2026, 3, 1, tzinfo=UTC)
chat = pytest.fixture(scope="module")(chat_receiver)
runtime = integration.runtime  # a wired runtime with a database of its own


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def failing(error: Exception) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


# --- job errors ----------------------------------------------------------------------------------


async def test_a_data_store_outage_is_a_safe_reason_and_the_detail_is_logged_under_the_job(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    configure(runtime, max_attempts=2, backoff_initial_seconds=0.05)
    monkeypatch.setattr(
        runtime.measurements, "frames", failing(AutoReconnect(f"{INTERNAL}: connection refused"))
    )
    spec = job_spec("leaky", body("csv", [series_item("weight", START, START + timedelta(hours=1))]))

    with caplog.at_level(logging.WARNING):
        outcome = await render(runtime, spec)

    assert outcome.result.status is JobStatus.FAILED
    assert outcome.result.error == "the data store was unavailable; gave up after 2 attempts"
    logged = [r for r in caplog.records if spec.job_id in r.getMessage()]
    assert any(INTERNAL in (r.exc_text or "") or INTERNAL in r.getMessage() for r in logged)


async def test_an_unexpected_error_shows_only_a_reference(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.measurements, "frames", failing(RuntimeError(f"mongo host {INTERNAL}")))
    spec = job_spec("leaky", body("csv", [series_item("weight", START, START + timedelta(hours=1))]))

    outcome = await render(runtime, spec)

    assert outcome.result.error == f"an internal error occurred (reference {spec.job_id})"


async def test_an_object_store_outage_names_no_host(runtime: Runtime) -> None:
    configure(runtime, max_attempts=1)
    port = closed_port()
    runtime.storage = type(runtime.storage)(
        runtime.settings.storage.model_copy(update={"endpoint": f"127.0.0.1:{port}"})
    )
    spec = job_spec("leaky", body("csv", [series_item("weight", START, START + timedelta(hours=1))]))

    await handle_export_requested(runtime, requested(spec))  # its files cannot be read back

    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    assert job.error == "the object store was unavailable"


@pytest.fixture
def mail_unreachable(runtime: Runtime, chat: ChatReceiver) -> Settings:
    settings = notifier_settings(runtime.settings, chat, max_attempts=1)
    smtp = settings.smtp.model_copy(update={"port": closed_port()})
    return settings.model_copy(update={"smtp": smtp})


async def test_delivery_errors_name_no_host_and_no_exception_text(
    runtime: Runtime,
    mail_unreachable: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    notifier = make_notifier(runtime, mail_unreachable)
    monkeypatch.setattr(
        notifier._senders["discord"], "send", failing(RuntimeError(f"proxy {INTERNAL} said no"))
    )
    messages = [
        {"medium": "email", "recipients": ["ops@example.com"]},
        {"medium": "discord", "recipients": ["webhook:ops"]},
    ]
    spec, result = await finished_job(runtime, messages, tmp_path)

    await notifier.on_export_completed([completed_event(spec, result)])
    mail, discord = await deliveries(runtime, spec.job_id)

    smtp_port = str(mail_unreachable.smtp.port)
    assert mail.status == "failed"
    [refused] = mail.refused
    assert refused.reason.startswith("SMTP: could not reach the mail server (")
    assert smtp_port not in refused.reason
    assert "127.0.0.1" not in refused.reason
    assert discord.status == "failed"
    assert discord.last_error == f"an internal error occurred (reference {spec.job_id}.1)"


# --- header cells --------------------------------------------------------------------------------

EVIL = ('=HYPERLINK("http://evil")', "Weight [kg]", "@SUM(A1) [+1]")


def test_csv_header_cells_are_neutralised_like_values() -> None:
    sink = io.BytesIO()
    with CsvWriter(sink, Document(EVIL)):
        pass
    assert sink.getvalue() == b'"\'=HYPERLINK(""http://evil"")",Weight [kg],\'@SUM(A1) [+1]\r\n'


def test_xlsx_header_cells_that_look_like_formulas_stay_text() -> None:
    sink = io.BytesIO()
    with XlsxWriter(sink, Document(EVIL)):
        pass
    sheet = openpyxl.load_workbook(io.BytesIO(sink.getvalue()))["Data"]
    assert [cell.value for cell in sheet[1]] == list(EVIL)
    assert [bool(cell.quotePrefix) for cell in sheet[1]] == [True, False, True]
    assert all(cell.data_type == "s" for cell in sheet[1])


# --- the API -------------------------------------------------------------------------------------


async def test_a_failing_dependency_is_a_bare_500(
    servers: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(RequestRepository, "page", failing(RuntimeError(f"mongo host {INTERNAL}")))
    headers = {"X-User-Id": "alice", "X-Tenant-Id": "acme"}
    async with serving(isolated(servers)) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        with caplog.at_level(logging.ERROR):
            answer = await client.get("/exports", headers=headers)
        created = await client.post("/exports", json=copy.deepcopy(SEED_000), headers=headers)

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"message": "Internal server error"}
    assert INTERNAL not in answer.text
    assert any("GET /exports" in r.getMessage() and r.exc_info for r in caplog.records)
    assert created.status_code == 201  # the API serves on
