"""The ``exporter`` command against the running system: the five services on the session's
servers. In-process (``main(argv)``) for speed, plus one run of the installed script."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.adapters.mongo.client import connect, database
from exporter.cli import main
from exporter.cli.replays import ReplayLog, letter_id
from exporter.local.demo import (
    DEMO_EXPORT,
    DEVICE,
    POINTS,
    demo_measurements,
    ingested,
    publish,
    stored_readings,
)
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic

pytestmark = pytest.mark.servers
TENANT, USER = "cli", "cli-user"


def cli(services: LocalServices, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Runs the command as ``USER`` of ``TENANT``; its exit code and stdout."""
    capsys.readouterr()
    identity = ["--api-url", services.api_url, "--tenant", TENANT, "--user", USER]
    code = main([*identity, "-o", "json", *argv])
    return code, capsys.readouterr().out


def as_json(out: str) -> Any:
    return json.loads(out)


def test_create_watch_download_gives_the_apis_bytes(
    services: LocalServices, servers: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    asyncio.run(publish_demo(servers, TENANT))
    asyncio.run(ingested(servers, tenant=TENANT))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({key: value for key, value in DEMO_EXPORT.items() if key != "notification"}))

    code, out = cli(services, capsys, "exports", "create", "-f", str(spec), "--wait")
    assert code == 0
    job = as_json(out)
    assert job["status"] == "done", job["error"]
    [file] = job["files"]

    code, out = cli(services, capsys, "download", job["id"], "--out", str(tmp_path / "files"))
    assert code == 0
    [saved] = as_json(out)
    downloaded = Path(saved["path"]).read_bytes()
    headers = {"X-User-Id": USER, "X-Tenant-Id": TENANT}
    with httpx.Client(base_url=services.api_url, headers=headers, follow_redirects=True) as api:
        through_api = api.get(f"/jobs/{job['id']}/download").content
    assert downloaded == through_api
    assert len(downloaded) == file["sizeInBytes"]
    assert Path(saved["path"]).parent == (tmp_path / "files").resolve()

    # The installed script, configured by the environment alone.
    environment = os.environ | {"EXPORTER_API_URL": services.api_url, "EXPORTER_TENANT": TENANT}
    environment |= {"EXPORTER_USER": USER, "EXPORTER_PROFILES": str(tmp_path / "none.toml")}
    script = Path(sys.executable).with_name("exporter")
    listed = subprocess.run(
        [str(script), "-o", "json", "jobs", "get", job["id"]],
        env=environment,
        capture_output=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["files"] == job["files"]


async def publish_demo(settings: Settings, tenant: str, key: str = DEVICE, broken: bool = False) -> None:
    """The demo readings for ``tenant``; ``broken``, with records the ingestor dead-letters."""
    payload = demo_measurements(tenant).to_wire()
    if broken:
        payload["data"]["records"] = "not a list"
    await publish(settings, Topic.MEASUREMENTS.value, key, payload)


def test_dlq_replay_stores_a_fixed_message_once(
    services: LocalServices, servers: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tenant, key = f"cli-dlq-{uuid.uuid4().hex[:8]}", f"cli-dlq-{uuid.uuid4().hex}"
    asyncio.run(publish_demo(servers, tenant, key, broken=True))
    letter = wait_for_letter(services, capsys, key)
    assert "records" in letter["reason"]
    assert letter["source"].startswith("messages/")
    assert letter["replay"] is None

    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(demo_measurements(tenant).to_wire()))
    replay = ("dlq", "replay", "--topic", "messages", "--offset", letter["letter"], "-f", str(fixed))
    code, out = cli(services, capsys, *replay)
    assert code == 0
    [replayed] = as_json(out)
    assert replayed["outcome"] == "replayed"
    asyncio.run(ingested(servers, tenant=tenant))

    # Again: refused by the replay record, nothing published.
    code, out = cli(services, capsys, *replay)
    assert code == 0
    [again] = as_json(out)
    assert again["outcome"] == "skipped"
    assert again["to"].startswith("already replayed")
    # A sentinel behind it on the same partition: once it is stored, a second copy would be too.
    asyncio.run(publish_demo(servers, f"{tenant}-sentinel", key))
    asyncio.run(ingested(servers, tenant=f"{tenant}-sentinel"))
    assert asyncio.run(readings(servers, tenant)) == POINTS
    tail = ("topics", "tail", "--topic", "messages", "--from-beginning", "--idle", "3")
    code, out = cli(services, capsys, *tail)
    assert code == 0
    address = "messages.dlq/" + letter["letter"].replace(":", "/")
    copies = [line for line in out.splitlines() if json.loads(line)["headers"].get("x-replay-of") == address]
    assert len(copies) == 1
    [listed] = [row for row in list_letters(services, capsys) if row["letter"] == letter["letter"]]
    assert listed["replay"]["state"] == "published"


def wait_for_letter(services: LocalServices, capsys: pytest.CaptureFixture[str], key: str) -> dict[str, Any]:
    for _ in range(60):
        found = [row for row in list_letters(services, capsys) if row["key"] == key]
        if found:
            return found[0]
    pytest.fail(f"the broken record {key} never reached messages.dlq")


def list_letters(services: LocalServices, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, out = cli(services, capsys, "dlq", "list", "--topic", "messages")
    assert code == 0
    rows: list[dict[str, Any]] = as_json(out)
    return rows


async def readings(settings: Settings, tenant: str) -> int:
    client = connect(settings)
    try:
        return await stored_readings(database(client, settings), tenant)
    finally:
        await client.close()


def test_doctor_outbox_and_stuck_jobs_pass_on_a_healthy_system(
    services: LocalServices, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(services, capsys, "doctor")
    assert code == 0, out
    assert {check["check"] for check in as_json(out)} >= {"api", "mongodb", "kafka", "consumer lag"}
    code, out = cli(services, capsys, "outbox", "status")
    assert code == 0
    assert as_json(out)["pendingEvents"] >= 0
    code, out = cli(services, capsys, "jobs", "stuck")
    assert (code, as_json(out)) == (0, [])


def test_an_unconfirmed_replay_is_refused_until_forced(servers: Settings) -> None:
    async def claims() -> list[Any]:
        client = connect(servers)
        try:
            log = ReplayLog(database(client, servers))
            letter = letter_id("things.dlq", 0, int(uuid.uuid4().int % 10**9))
            first = await log.claim(letter)
            unconfirmed = await log.claim(letter)  # the first replay died before confirming
            forced = await log.claim(letter, force=True)
            await log.published(letter, "things", 1, 5)
            after = await log.claim(letter, force=True)  # force never repeats a published replay
            return [first, unconfirmed and unconfirmed["state"], forced, after and after["state"]]
        finally:
            await client.close()

    assert asyncio.run(claims()) == [None, "publishing", None, "published"]
