"""Readiness follows MongoDB down and up again; JSON log lines carry the ids of what they are
about; no secret reaches a log line."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import logging.config
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr

from exporter.adapters.storage import ObjectStore
from exporter.contracts.events import ExportRequested
from exporter.local.demo import publish
from exporter.local.servers import LOOPBACK, free_ports
from exporter.local.services import LocalServices
from exporter.log_context import logging_config
from exporter.settings import Settings
from exporter.topics import Topic
from request_api.app import create_app
from tests.integration.api_server import CSV, finished_with_a_file, isolated, serving
from tests.integration.notifier_support import eventually
from tests.integration.renderer_support import SCHEDULED_AT, body, job_spec, series_item
from tests.integration.test_startup_and_health import MongoOnly
from tests.own_database import own_database
from tests.request_cases import SEED_000

pytestmark = pytest.mark.servers
WAIT_SECONDS = 120
TRACE = "0af7651916cd43dd8448eb211c80319c"


async def test_readiness_turns_false_while_mongodb_is_stopped_and_true_again_after(
    servers: Settings, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    uri = SecretStr(f"mongodb://{LOOPBACK}:{port}/?directConnection=true")
    settings = own_database(
        servers,
        "ready",
        liveness={"readiness_interval_seconds": 0.5, "readiness_timeout_seconds": 1.0},
    )
    settings = settings.model_copy(
        update={
            "mongo": settings.mongo.model_copy(update={"uri": uri}),
            "local": settings.local.model_copy(update={"run_dir": tmp_path}),
        }
    )
    mongo = MongoOnly(settings)
    mongo.start(timeout=60)
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

                async def ready_is(expected: bool) -> bool | None:
                    answer = await client.get("/ready")
                    report = answer.json()
                    assert answer.status_code == (200 if report["ready"] else 503)
                    return True if report["ready"] is expected else None

                await eventually(lambda: ready_is(True), "ready with MongoDB up", WAIT_SECONDS)
                mongo.stop()
                await eventually(lambda: ready_is(False), "not ready with MongoDB stopped", WAIT_SECONDS)
                report = (await client.get("/ready")).json()
                assert report["dependencies"]["mongodb"] != "ok"
                assert report["dependencies"]["kafka"] == report["dependencies"]["s3"] == "ok"
                assert (await client.get("/health")).status_code == 200  # alive: no restart
                mongo.start(timeout=60)
                await eventually(lambda: ready_is(True), "ready again once MongoDB is back", WAIT_SECONDS)
                assert "/ready" not in json.dumps(app.openapi())
    finally:
        mongo.stop()


async def test_the_s3_readiness_check_finds_a_missing_bucket_and_makes_none(servers: Settings) -> None:
    missing = servers.storage.model_copy(update={"bucket": f"missing-{uuid.uuid4().hex[:8]}"})
    with pytest.raises(LookupError):
        await ObjectStore(missing).check_bucket()
    with pytest.raises(LookupError):
        await ObjectStore(missing).check_bucket()  # still missing: the check created nothing
    await ObjectStore(servers.storage).check_bucket()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed: each must be one JSON object."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def job_lines(text: str, job_id: str) -> list[dict[str, Any]]:
    """The renderer's line about the job it finished."""
    return [line for line in json_lines(text) if line.get("job_id") == job_id and "rows" in line["message"]]


async def test_a_consumed_message_s_json_lines_carry_the_job_request_tenant_and_message_ids(
    servers: Settings, tmp_path: Path
) -> None:
    settings = own_database(servers, "logs").model_copy(update={"log_format": "json"})
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    spec = job_spec(
        tenant, body("csv", [series_item("weight", SCHEDULED_AT - timedelta(days=1), SCHEDULED_AT)])
    )
    event = ExportRequested(
        id=f"evt-{uuid.uuid4().hex}", source="tests", subject=spec.job_id, tenant=tenant, data=spec
    )
    log = tmp_path / "renderer.log"
    with log.open("wb") as output:
        renderer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "renderer",
            env=LocalServices(settings).env(),
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await publish(settings, Topic.EXPORT_REQUESTED.value, spec.job_id, event.to_wire())

        async def finished() -> bool | None:
            assert renderer.returncode is None, log.read_text()
            return True if job_lines(log.read_text(), spec.job_id) else None

        await eventually(finished, "the job's line", WAIT_SECONDS)
    finally:
        renderer.terminate()
        await asyncio.wait_for(renderer.wait(), 30)

    lines = json_lines(log.read_text())
    [done] = job_lines(log.read_text(), spec.job_id)
    assert done["level"] == "INFO"
    assert done["logger"] == "renderer.export_job"
    assert done["request_id"] == spec.request_id
    assert done["tenant"] == tenant
    assert done["topic"] == Topic.EXPORT_REQUESTED.value
    assert isinstance(done["partition"], int)
    assert isinstance(done["offset"], int)
    assert done["trace_id"] == event.id
    assert any(line["logger"].startswith("faststream") for line in lines)  # FastStream's too, as JSON


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The process's logging as ``logging_config`` sets it (JSON), into a string; restored after."""
    stream = io.StringIO()
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "faststream")
    saved = {
        name: (logger.level, logger.handlers[:], logger.filters[:], logger.propagate)
        for name in names
        for logger in [logging.getLogger(name)]
    }
    config = logging_config("INFO", "json")
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    yield stream
    for name, (level, handlers, filters, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:], logger.filters[:], logger.propagate = handlers, filters, propagate


async def test_no_signed_link_token_or_password_reaches_a_log_line(
    servers: Settings, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    jwt_secret = f"jwt-secret-{uuid.uuid4().hex}"
    settings = isolated(servers, auth_mode="jwt", jwt_secret=SecretStr(jwt_secret))
    password = f"hunter2-{uuid.uuid4().hex}"
    settings = settings.model_copy(
        update={"smtp": settings.smtp.model_copy(update={"password": SecretStr(password)})}
    )
    token = jwt.encode({"sub": "alice", "tenant": "acme", "exp": int(time.time()) + 600}, jwt_secret)
    request = copy.deepcopy(SEED_000) | {"type": "oneTime"}
    request.pop("periodicity")
    async with serving(settings, log_config=None, log_level=None) as base_url:
        headers = {"Authorization": f"Bearer {token}", "traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=20) as api:
            created = await api.post("/exports", json=request)
            assert created.status_code == 201, created.text
            [job] = (await api.get(f"/exports/{created.json()['id']}/jobs")).json()["items"]
            await finished_with_a_file(settings, created.json()["id"], job["id"], tmp_path)
            download = f"/jobs/{job['id']}/download"
            link = (await api.get(download, headers={"Accept": "application/json"})).json()["url"]
            signature = link.split("X-Amz-Signature=", 1)[1].split("&", 1)[0]
            async with httpx.AsyncClient() as plain:
                assert (await plain.get(link)).content == CSV
            # The link handed back to the API in a query, and a password where none belongs.
            query = link.split("?", 1)[1] + f"&password={password}"
            echoed = await api.get(f"{download}?{query}")
            assert echoed.status_code == 307
            refused = await api.get("/exports", headers={"Authorization": f"Basic {password}"})
            assert refused.status_code == 401
    text = captured_logs.getvalue()
    for secret in (token, jwt_secret, password, signature, settings.storage.secret_key.get_secret_value()):
        assert secret not in text
    access = [line for line in json_lines(text) if line["logger"] == "uvicorn.access"]
    assert len(access) == 5  # one line per request to the API
    assert all(line["trace_id"] == TRACE for line in access)
    assert [" 401" in line["message"] for line in access] == [False] * 4 + [True]
    assert all(line["tenant"] == "acme" for line in access[:4])
    assert "tenant" not in access[4]  # refused before anyone was known
    assert echoed.headers["x-request-id"] == TRACE
