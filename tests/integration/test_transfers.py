"""A done run's files pushed to its transfer location, against real servers: a second S3 user and
bucket on the session's SeaweedFS, an SFTP server (asyncssh, in the test), an HTTP receiver that
fails then recovers. Each file arrives once, however often ``export.completed`` comes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from minio import Minio
from werkzeug import Response

from exporter.contracts.base import utcnow
from exporter.contracts.job import FileTransfer, JobSpec
from exporter.contracts.transfer import TransferLocationSpec
from exporter.domain.access import Principal
from exporter.local.servers import PARTNER_ACCESS_KEY, PARTNER_BUCKET, PARTNER_SECRET_KEY
from exporter.runtime import Runtime
from exporter.settings import Settings
from notifier.transfer import Transfers
from request_api.transfer_locations import create_location
from tests.integration.conftest import running
from tests.integration.notifier_support import (
    ChatReceiver,
    chat_receiver,
    completed_event,
    eventually,
    finished_job,
)
from tests.own_database import own_database

FILES = {"plant-a.csv": b"time,value\n1,2\n" * 50, "plant-b.csv": b"time,value\n3,4\n" * 70}
ADMIN = Principal(user="admin", tenant="acme", roles=frozenset({"exporter-admin"}))
SFTP_PASSWORD = "sftp-test-password"
SETTLED = {"done", "failed"}

chat = pytest.fixture(scope="module")(chat_receiver)


@pytest.fixture
async def runtime(servers: Settings) -> AsyncIterator[Runtime]:
    transfer = {"allow_private_addresses": True, "backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.1}
    async with running(own_database(servers, "tr", transfer=transfer)) as wired:
        yield wired


async def location(runtime: Runtime, destination: dict[str, Any]) -> str:
    spec = TransferLocationSpec.model_validate({"name": "Partner drop", "destination": destination})
    created = await create_location(runtime, ADMIN, spec)
    location_id: str = created["id"]
    return location_id


async def finished(runtime: Runtime, location_id: str, folder: Path) -> JobSpec:
    """A done job of tenant acme whose request names the location, its files in our store."""
    spec, _ = await finished_job(runtime, [], folder, files=FILES, tenant="acme")
    request = spec.request.model_copy(update={"transfer_location_id": location_id})
    named = spec.model_copy(update={"request": request})
    checksums = {
        f"files.{i}.checksum": f"sha256:{hashlib.sha256(content).hexdigest()}"
        for i, content in enumerate(FILES.values())
    }
    await runtime.db["jobs"].update_one(
        {"_id": spec.job_id}, {"$set": {"spec": named.to_document(), **checksums}}
    )
    return named


async def settled(runtime: Runtime, job_id: str) -> list[FileTransfer]:
    async def probe() -> list[FileTransfer] | None:
        job = await runtime.jobs.get(job_id)
        done = job is not None and job.transfers and all(t.status in SETTLED for t in job.transfers)
        return job.transfers if done and job is not None else None

    return await eventually(probe, f"the transfers of {job_id}")


async def run_twice(runtime: Runtime, spec: JobSpec) -> list[FileTransfer]:
    """``export.completed`` delivered twice to two notifiers at once, and once more afterwards."""
    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    event = completed_event(spec, job.result)
    first, second = Transfers(runtime), Transfers(runtime)
    await asyncio.gather(first.on_export_completed([event]), second.on_export_completed([event]))
    transfers = await settled(runtime, spec.job_id)
    await first.on_export_completed([event])
    await first.sweep()
    return transfers


def partner_client(settings: Settings) -> Minio:
    return Minio(
        settings.storage.endpoint, access_key=PARTNER_ACCESS_KEY, secret_key=PARTNER_SECRET_KEY, secure=False
    )


def partner_s3(runtime: Runtime, **changes: str) -> dict[str, str]:
    """The partner's bucket as a transfer location, with the partner's credentials but ``changes``."""
    return {
        "kind": "s3",
        "endpoint": f"http://{runtime.settings.storage.endpoint}",
        "bucket": PARTNER_BUCKET,
        "accessKey": PARTNER_ACCESS_KEY,
        "secretKey": PARTNER_SECRET_KEY,
    } | changes


@pytest.fixture
def partner_bucket(servers: Settings) -> Minio:
    """The partner's bucket, made by our admin user; the partner's own user may only use it."""
    admin = Minio(
        servers.storage.endpoint,
        access_key=servers.storage.access_key,
        secret_key=servers.storage.secret_key.get_secret_value(),
        secure=False,
    )
    if not admin.bucket_exists(PARTNER_BUCKET):
        admin.make_bucket(PARTNER_BUCKET)
    return partner_client(servers)


async def test_s3_files_land_once_with_the_partners_own_credentials(
    runtime: Runtime, partner_bucket: Minio, tmp_path: Path
) -> None:
    location_id = await location(runtime, partner_s3(runtime, prefix=f"acme/{tmp_path.name}/"))
    spec = await finished(runtime, location_id, tmp_path)
    transfers = await run_twice(runtime, spec)
    assert [(t.name, t.status, t.attempts, t.last_error) for t in transfers] == [
        (name, "done", 1, None) for name in FILES
    ]
    for name, content in FILES.items():
        stored = partner_bucket.get_object(PARTNER_BUCKET, f"acme/{tmp_path.name}/{name}")
        assert stored.read() == content
    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    assert (job.transfer_location_id, job.transfer_location_name) == (location_id, "Partner drop")


async def test_wrong_s3_credentials_fail_at_once_with_a_reason_a_user_can_act_on(
    runtime: Runtime, partner_bucket: Minio, tmp_path: Path
) -> None:
    location_id = await location(runtime, partner_s3(runtime, secretKey="not-the-partners-secret"))
    spec = await finished(runtime, location_id, tmp_path)
    transfers = await run_twice(runtime, spec)
    assert {(t.status, t.attempts, t.last_error) for t in transfers} == {
        ("failed", 1, "S3 SignatureDoesNotMatch: the location's secret key is wrong")
    }


class SftpServer:
    """An SFTP server on a free loopback port, chrooted to ``root``, one user with a password."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        # The one client key the user "drop" may log in with, besides the password.
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.opened: list[str] = []
        self._server: asyncssh.SSHAcceptor | None = None

    @property
    def host_key(self) -> str:
        kind, body = self.key.export_public_key("openssh").decode().split()[:2]
        return f"{kind} {body}"

    async def start(self) -> int:
        server = self

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == "drop" and password == SFTP_PASSWORD

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                expected = server.client_key.export_public_key()
                return username == "drop" and key.export_public_key() == expected

        class Files(asyncssh.SFTPServer):
            def __init__(self, channel: asyncssh.SSHServerChannel[bytes]) -> None:
                super().__init__(channel, chroot=str(server.root).encode())

            def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
                server.opened.append(path.decode())
                return super().open(path, pflags, attrs)

        self._server = await asyncssh.create_server(
            Auth, "127.0.0.1", 0, server_host_keys=[self.key], sftp_factory=Files
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def sftp(tmp_path: Path) -> AsyncIterator[tuple[SftpServer, int]]:
    root = tmp_path / "sftp-root"
    root.mkdir()
    server = SftpServer(root)
    port = await server.start()
    try:
        yield server, port
    finally:
        server.close()


def sftp_drop(server: SftpServer, port: int, **login: str) -> dict[str, Any]:
    """The test server's drop user as an SFTP location, its host key known, with ``login``."""
    known = server.host_key
    return {"kind": "sftp", "host": "127.0.0.1", "port": port, "user": "drop", "knownHostKey": known} | login


async def test_sftp_files_land_once_and_only_after_the_host_key_matched(
    runtime: Runtime, sftp: tuple[SftpServer, int], tmp_path: Path
) -> None:
    server, port = sftp
    destination = sftp_drop(server, port, password=SFTP_PASSWORD, directory="incoming/acme")
    spec = await finished(runtime, await location(runtime, destination), tmp_path)
    transfers = await run_twice(runtime, spec)
    assert [(t.status, t.attempts) for t in transfers] == [("done", 1)] * len(FILES)
    for name, content in FILES.items():
        assert (server.root / "incoming/acme" / name).read_bytes() == content
    assert sorted(server.opened) == sorted(f"incoming/acme/{name}.part" for name in FILES)

    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    other = {**destination, "knownHostKey": " ".join(impostor.split()[:2]), "directory": "elsewhere"}
    (second := tmp_path / "second").mkdir()
    spec = await finished(runtime, await location(runtime, other), second)
    transfers = await run_twice(runtime, spec)
    assert {(t.status, t.attempts, t.last_error) for t in transfers} == {
        ("failed", 1, "SFTP: the server's key is not the location's known host key")
    }
    assert not (server.root / "elsewhere").exists()


async def test_sftp_logs_in_with_a_private_key(
    runtime: Runtime, sftp: tuple[SftpServer, int], tmp_path: Path
) -> None:
    server, port = sftp
    destination = sftp_drop(server, port, privateKey=server.client_key.export_private_key().decode())
    spec = await finished(runtime, await location(runtime, destination), tmp_path)
    transfers = await run_twice(runtime, spec)
    assert [(t.status, t.attempts, t.last_error) for t in transfers] == [("done", 1, None)] * len(FILES)
    assert {name: (server.root / name).read_bytes() for name in FILES} == FILES


async def test_an_https_receiver_that_fails_twice_then_recovers_gets_each_file_once(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    drop = f"/drop/{tmp_path.name}"

    def unavailable(_: object) -> Response:
        return Response("down for maintenance", status=503)

    def accepted(_: object) -> Response:
        return Response("", status=201)

    for name in FILES:
        chat.then(f"{drop}/{name}", unavailable, unavailable, accepted)
    destination = {
        "kind": "https",
        "url": chat.url_for(drop),
        "headers": {"Authorization": "Bearer receiver-token"},
    }
    spec = await finished(runtime, await location(runtime, destination), tmp_path)
    transfers = await run_twice(runtime, spec)
    assert [(t.status, t.attempts, t.last_error) for t in transfers] == [("done", 3, None)] * len(FILES)
    for name, content in FILES.items():
        calls = chat.calls(f"{drop}/{name}")
        assert len(calls) == 3  # two refused, one accepted, none after
        assert {call.data for call in calls} == {content}
        last = calls[-1].headers
        assert last["Authorization"] == "Bearer receiver-token"
        assert last["Content-Length"] == str(len(content))
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        assert last["Repr-Digest"] == f"sha-256=:{digest}:"
    assert "receiver-token" not in caplog.text
    assert "receiver-token" not in str(await runtime.db["transferLocations"].find_one({}))


async def test_a_location_deleted_before_the_push_fails_its_files_with_the_reason(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    location_id = await location(runtime, {"kind": "https", "url": chat.url_for("/never")})
    spec = await finished(runtime, location_id, tmp_path)
    assert await runtime.db["transferLocations"].delete_one({"_id": location_id})
    transfers = await run_twice(runtime, spec)
    assert {(t.status, t.attempts) for t in transfers} == {("failed", 0)}
    assert chat.calls("/never/plant-a.csv") == []


async def test_a_push_cut_off_by_a_crash_is_pushed_again_and_a_lost_event_is_swept_up(
    servers: Settings, chat: ChatReceiver, tmp_path: Path
) -> None:
    """No file is lost: a job whose event never came is planned by the sweep, and a push whose
    notifier died (``pushing`` past its lease) is pushed again, to the same name."""
    drop = f"/drop/{tmp_path.name}"
    for name in FILES:
        chat.then(f"{drop}/{name}", *[lambda _: Response("", status=201)] * 2)
    settings = own_database(
        servers, "tr", transfer={"allow_private_addresses": True}, notifier={"sweep_interval_seconds": 0.01}
    )
    async with running(settings) as runtime:
        location_id = await location(runtime, {"kind": "https", "url": chat.url_for(drop)})
        spec = await finished(runtime, location_id, tmp_path)
        await asyncio.sleep(0.05)  # past the sweep's grace for a job whose event may be on its way
        transfers = Transfers(runtime)
        assert await transfers.sweep() == 1
        assert [t.status for t in await settled(runtime, spec.job_id)] == ["done"] * len(FILES)

        # The notifier died mid-push of the first file: its claim's lease ran out.
        past = {"transfers.0.status": "pushing", "transfers.0.leaseUntil": utcnow() - timedelta(seconds=1)}
        await runtime.db["jobs"].update_one({"_id": spec.job_id}, {"$set": past})
        await asyncio.sleep(0.05)
        assert await transfers.sweep() == 1
        again = await settled(runtime, spec.job_id)
        assert [(t.status, t.attempts) for t in again] == [("done", 2), ("done", 1)]
    first, second = list(FILES)
    assert len(chat.calls(f"{drop}/{first}")) == 2  # pushed again: the same name, the same bytes
    assert len(chat.calls(f"{drop}/{second}")) == 1


async def test_a_receiver_that_stays_down_is_given_up_on_with_the_reason(
    servers: Settings, chat: ChatReceiver, tmp_path: Path
) -> None:
    drop = f"/drop/{tmp_path.name}"
    for name in FILES:
        chat.then(f"{drop}/{name}", *[lambda _: Response("down", status=503)] * 3)
    transfer = {"allow_private_addresses": True, "backoff_initial_seconds": 0.01, "max_attempts": 3}
    async with running(own_database(servers, "tr", transfer=transfer)) as runtime:
        location_id = await location(runtime, {"kind": "https", "url": chat.url_for(drop)})
        transfers = await run_twice(runtime, await finished(runtime, location_id, tmp_path))
    assert {(t.status, t.attempts, t.last_error) for t in transfers} == {
        ("failed", 3, "HTTP 503: Service Unavailable (gave up after 3 attempts)")
    }
    assert [len(chat.calls(f"{drop}/{name}")) for name in FILES] == [3, 3]


async def test_a_notifier_stopping_lets_its_pushes_in_flight_finish_and_be_recorded(
    runtime: Runtime, chat: ChatReceiver, tmp_path: Path
) -> None:
    drop = f"/drop/{tmp_path.name}"
    first, second = (f"{drop}/{name}" for name in FILES)
    for path in (first, second):
        chat.then(path, lambda _: Response("", status=201))
    gate = chat.hold(first)
    location_id = await location(runtime, {"kind": "https", "url": chat.url_for(drop)})
    spec = await finished(runtime, location_id, tmp_path)
    transfers = Transfers(runtime)
    job = await runtime.jobs.get(spec.job_id)
    assert job is not None
    await transfers.on_export_completed([completed_event(spec, job.result)])
    await eventually(lambda: _some(chat.calls(first)), "the first push to arrive")
    draining = asyncio.create_task(transfers.drain())
    await asyncio.sleep(0.05)
    assert not draining.done()  # it waits for the push in flight
    gate.set()
    await draining
    assert [(t.status, t.attempts) for t in await settled(runtime, spec.job_id)] == [("done", 1)] * 2


async def _some(items: list[Any]) -> list[Any] | None:
    return items or None
