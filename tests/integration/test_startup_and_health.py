"""A service started before MongoDB waits for it; liveness answers from the loops' progress."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from exporter.local.servers import LOOPBACK, LocalServers, ProcessSpec, free_ports
from exporter.local.services import LocalServices
from exporter.runtime import Runtime
from exporter.settings import Settings
from request_api.app import create_app
from tests.own_database import own_database


class MongoOnly(LocalServers):
    def _define(self) -> list[ProcessSpec]:
        return [self._mongo()]


def wait_logged(log: Path, text: str, service: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while text not in log.read_text(errors="replace"):
        assert service.poll() is None, f"the service exited: {log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"{text!r} not logged: {log.read_text(errors='replace')}"
        time.sleep(0.1)


def test_a_service_started_while_mongodb_is_down_waits_for_it_and_starts_once_it_answers(
    servers: Settings, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    uri = SecretStr(f"mongodb://{LOOPBACK}:{port}/?directConnection=true")
    settings = servers.model_copy(
        update={
            "mongo": servers.mongo.model_copy(update={"uri": uri}),
            "local": servers.local.model_copy(update={"run_dir": tmp_path}),
            "liveness": servers.liveness.model_copy(update={"dependency_attempt_seconds": 1.0}),
        }
    )
    mongo, log = MongoOnly(settings), tmp_path / "scheduler.log"
    with log.open("wb") as output:
        service = subprocess.Popen(
            [sys.executable, "-m", "scheduler"],
            env=LocalServices(settings).env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_logged(log, f"waiting for MongoDB at {LOOPBACK}:{port}: ", service)
        mongo.start(timeout=60)
        wait_logged(log, "FastStream app started successfully", service)
        text = log.read_text()
    finally:
        service.terminate()
        service.wait(timeout=30)
        mongo.stop()

    assert text.count("waiting for MongoDB") == 1  # one line per reason, not one per attempt
    assert f"MongoDB at {LOOPBACK}:{port} answers after" in text
    assert "Traceback" not in text


async def test_the_api_health_is_503_while_a_loop_is_stuck_and_200_again_once_it_moves(
    servers: Settings,
) -> None:
    app = create_app(own_database(servers, "health"))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            assert (await client.get("/health")).json()["status"] == "ok"
            real_clock = runtime.liveness.clock
            with runtime.liveness.working("consumer export.requested"):
                runtime.liveness.clock = lambda: real_clock() + servers.liveness.busy_seconds + 5
                stuck = await client.get("/health")
                runtime.liveness.clock = real_clock
            fine = await client.get("/health")

    assert stuck.status_code == 503
    assert stuck.json()["status"] == "stalled"
    assert "consumer export.requested" in stuck.json()["stalled"]
    assert fine.status_code == 200
