"""A transfer location across the five services: a tenant's admin defines one over HTTP (the
partner's own bucket and credentials on the session's S3), a request names it, and the run's file
lands there once, its transfer log shown in the job and in seed 004's fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from minio import Minio

from exporter.adapters.mongo.client import connect, database
from exporter.adapters.mongo.jobs import JobRepository
from exporter.adapters.storage import ObjectStore
from exporter.domain.transfers import transfer_fields
from exporter.local.demo import DEMO_EXPORT, DEMO_USER, DEVICE, demo_measurements, ingested, publish
from exporter.local.servers import PARTNER_ACCESS_KEY, PARTNER_BUCKET, PARTNER_SECRET_KEY
from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.topics import Topic
from tests.e2e.test_thin_path import eventually

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
async def admin(services: LocalServices) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-User-Id": DEMO_USER, "X-User-Roles": "exporter-admin"}
    async with httpx.AsyncClient(base_url=services.api_url, headers=headers, timeout=10) as client:
        yield client


async def test_a_runs_file_lands_once_in_the_partners_bucket(
    services: LocalServices, admin: httpx.AsyncClient, servers: Settings
) -> None:
    partner = Minio(
        servers.storage.endpoint, access_key=PARTNER_ACCESS_KEY, secret_key=PARTNER_SECRET_KEY, secure=False
    )
    ours = Minio(
        servers.storage.endpoint,
        access_key=servers.storage.access_key,
        secret_key=servers.storage.secret_key.get_secret_value(),
        secure=False,
    )
    if not ours.bucket_exists(PARTNER_BUCKET):
        ours.make_bucket(PARTNER_BUCKET)
    destination = {
        "kind": "s3",
        "endpoint": f"http://{servers.storage.endpoint}",
        "bucket": PARTNER_BUCKET,
        "prefix": "e2e/",
        "accessKey": PARTNER_ACCESS_KEY,
        "secretKey": PARTNER_SECRET_KEY,
    }
    body = {"name": "Partner drop", "destination": destination}
    created = await admin.post("/transfer-locations", json=body)
    assert created.status_code == 201, created.text
    location_id = created.json()["id"]

    await publish(servers, Topic.MEASUREMENTS.value, DEVICE, demo_measurements().to_wire())
    await ingested(servers)
    request = await admin.post("/exports", json={**DEMO_EXPORT, "transferLocationId": location_id})
    assert request.status_code == 201, request.text

    async def transferred() -> dict[str, Any] | None:
        jobs = (await admin.get(f"/exports/{request.json()['id']}/jobs")).json()["items"]
        job = jobs[0] if jobs else None
        transfers = job.get("transfers") if job else None
        return job if transfers and all(t["status"] in {"done", "failed"} for t in transfers) else None

    job = await eventually(transferred, what="the run's file to be pushed")
    [file] = job["files"]
    [entry] = job["transfers"]
    outcome = (entry["name"], entry["status"], entry["attempts"], entry["lastError"])
    assert outcome == (file["name"], "done", 1, None)
    assert entry["sizeInBytes"] == file["sizeInBytes"]
    assert (job["transferLocationId"], job["transferLocationName"]) == (location_id, "Partner drop")
    pushed = partner.get_object(PARTNER_BUCKET, f"e2e/{file['name']}").read()
    assert pushed == await ObjectStore(servers.storage).read(file["key"])

    client = connect(servers)
    try:
        stored = await JobRepository(database(client, servers)).get(job["id"])
    finally:
        await client.close()
    assert stored is not None
    assert transfer_fields(stored) == (location_id, "Partner drop", job["id"])

    # Seed 004's history shows them by number: the location's, and the log's (the entry's own).
    listing = (await admin.get("/DataExport/History/")).json()
    [entry] = [entry for entry in listing["items"] if entry["storageKey"] == file["key"]]
    assert isinstance(entry["transferLocationId"], int)
    assert entry["transferLocationName"] == "Partner drop"
    assert entry["fileMoveLogIdentity"] == entry["identity"]
