"""``/transfer-locations`` over real HTTP against the real store: who may manage them, what is
stored (secrets sealed), what is shown (never a secret), SSRF refusals, tenant isolation, and a
request naming one."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from exporter.adapters.mongo.client import connect, database
from exporter.adapters.transfer.sealing import Sealer
from exporter.settings import Settings
from tests.integration.api_server import free_port, serving
from tests.own_database import own_database
from tests.request_cases import SEED_000

pytestmark = pytest.mark.servers
ADMIN_ROLE = "exporter-admin"
SECRETS = ("s3-secret-value", "sftp-password-value", "https-token-value")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
S3: dict[str, Any] = {
    "name": "Partner bucket",
    "destination": {
        "kind": "s3",
        "endpoint": "http://127.0.0.1:9000",
        "bucket": "partner-drop",
        "accessKey": "partner",
        "secretKey": SECRETS[0],
    },
}
SFTP: dict[str, Any] = {
    "name": "Partner SFTP",
    "destination": {
        "kind": "sftp",
        "host": "127.0.0.1",
        "user": "drop",
        "password": SECRETS[1],
        "knownHostKey": HOST_KEY,
    },
}
HTTPS = {
    "name": "Receiver",
    "destination": {
        "kind": "https",
        "url": "https://127.0.0.1:8443/in",
        "headers": {"Authorization": f"Bearer {SECRETS[2]}"},
    },
}


def client(base_url: str, user: str, tenant: str = "acme", roles: str = "") -> httpx.AsyncClient:
    headers = {"X-User-Id": user, "X-Tenant-Id": tenant}
    if roles:
        headers["X-User-Roles"] = roles
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=20)


def api_settings(servers: Settings, allow_private: bool) -> Settings:
    return own_database(
        servers, "api", api={"port": free_port()}, transfer={"allow_private_addresses": allow_private}
    )


@pytest.fixture(scope="module")
async def base_url(servers: Settings) -> AsyncIterator[tuple[str, Settings]]:
    settings = api_settings(servers, allow_private=True)
    async with serving(settings) as url:
        yield url, settings


async def test_an_admin_manages_locations_whose_secrets_are_sealed_and_never_shown(
    base_url: tuple[str, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    url, settings = base_url
    caplog.set_level(logging.DEBUG)
    async with client(url, "root", roles=ADMIN_ROLE) as admin, client(url, "alice") as alice:
        created = [await admin.post("/transfer-locations", json=body) for body in (S3, SFTP, HTTPS)]
        assert [answer.status_code for answer in created] == [201, 201, 201]
        s3 = created[0].json()
        masked = {"secretKey": "***", "prefix": "", "region": "us-east-1"}
        assert s3["destination"] == {**S3["destination"], **masked}
        assert created[2].json()["destination"]["headers"] == {"Authorization": "***"}
        listed = await alice.get("/transfer-locations")  # anyone of the tenant may read them
        assert listed.status_code == 200
        names = [entry["name"] for entry in listed.json()["results"]]
        assert names == ["Partner bucket", "Partner SFTP", "Receiver"]
        shown = await alice.get(f"/transfer-locations/{s3['id']}")
        assert shown.json() == s3
        assert all(secret not in listed.text + shown.text for secret in SECRETS)

        assert (await alice.post("/transfer-locations", json=S3)).status_code == 403
        assert (await alice.delete(f"/transfer-locations/{s3['id']}")).status_code == 403
        # What was read, sent back renamed: its *** keeps the secret it stands for.
        as_read = {"name": "Renamed", "destination": s3["destination"]}
        replaced = await admin.put(f"/transfer-locations/{s3['id']}", json=as_read)
        assert (replaced.status_code, replaced.json()["name"]) == (200, "Renamed")
        assert replaced.json()["createdAt"] == s3["createdAt"]
        masked_create = await admin.post("/transfer-locations", json=as_read)
        assert masked_create.status_code == 400
        assert masked_create.json()["message"] == (
            "destination.secretKey: give the secret ('***' keeps one only on a replace)"
        )

    mongo = connect(settings)
    try:
        stored = await database(mongo, settings)["transferLocations"].find_one({"_id": s3["id"]})
    finally:
        await mongo.close()
    assert stored is not None
    assert all(secret not in str(stored) for secret in SECRETS)
    opened = Sealer(settings.transfer.sealing_key).open(stored["sealed"], "acme", s3["id"])
    assert opened == {"secretKey": SECRETS[0]}
    assert all(secret not in caplog.text for secret in SECRETS)


async def test_another_tenant_can_neither_read_nor_name_a_location(base_url: tuple[str, Settings]) -> None:
    url, _ = base_url
    async with (
        client(url, "root", roles=ADMIN_ROLE) as admin,
        client(url, "eve", "globex", ADMIN_ROLE) as eve,
    ):
        location = (await admin.post("/transfer-locations", json=HTTPS)).json()
        assert (await eve.get(f"/transfer-locations/{location['id']}")).status_code == 404
        assert (await eve.put(f"/transfer-locations/{location['id']}", json=HTTPS)).status_code == 404
        assert (await eve.delete(f"/transfer-locations/{location['id']}")).status_code == 404
        assert location["id"] not in (await eve.get("/transfer-locations")).text

        request = {**copy.deepcopy(SEED_000), "transferLocationId": location["id"]}
        refused = await eve.post("/exports", json=request)
        assert refused.status_code == 400
        assert refused.json()["message"] == (
            f"transferLocationId: no transfer location '{location['id']}' in this tenant"
        )
        accepted = await admin.post("/exports", json=request)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["transferLocationId"] == location["id"]
        deleted = await admin.delete(f"/transfer-locations/{location['id']}")
        assert (deleted.status_code, deleted.json()) == (200, location)
        assert (await admin.get(f"/transfer-locations/{location['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ({"kind": "https", "url": "https://127.0.0.1/in"}, "127.0.0.1, a private, loopback or reserved"),
        ({"kind": "https", "url": "https://169.254.169.254/latest"}, "169.254.169.254, a private"),
        ({"kind": "https", "url": "https://localhost:8443/in"}, "a private, loopback or reserved address"),
        ({"kind": "https", "url": "http://93.184.216.34/in"}, "must be an https URL"),
        ({**S3["destination"], "endpoint": "10.0.0.5:9000"}, "10.0.0.5, a private"),
        ({**SFTP["destination"], "host": "192.168.1.1"}, "192.168.1.1, a private"),
    ],
)
async def test_internal_destinations_are_refused_without_the_allowance(
    servers: Settings, destination: dict[str, Any], problem: str
) -> None:
    async with (
        serving(api_settings(servers, allow_private=False)) as url,
        client(url, "root", roles=ADMIN_ROLE) as admin,
    ):
        refused = await admin.post("/transfer-locations", json={"name": "x", "destination": destination})
        assert refused.status_code == 400
        assert problem in refused.json()["message"]
