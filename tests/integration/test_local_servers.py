"""The launcher of the embedded servers: each answers like its production counterpart, and stops cleanly."""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from minio import Minio
from pymongo import AsyncMongoClient

from exporter.adapters.kafka import client_options
from exporter.local.servers import LocalServers, free_ports
from exporter.settings import Settings, get_settings

CHILD_ENV = """
import json
from exporter.local.servers import LocalServers
from exporter.settings import Settings
print(json.dumps(LocalServers(Settings()).env()))
"""


def minio_client(settings: Settings) -> Minio:
    storage = settings.storage
    return Minio(
        storage.endpoint,
        access_key=storage.access_key,
        secret_key=storage.secret_key.get_secret_value(),
        region=storage.region,
        secure=storage.secure,
    )


def stored_mails(maildir: Path) -> list[Path]:
    """The sink writes the file before it answers 250, so a sent message is already there."""
    return sorted(maildir.glob("*.eml"))


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_all_four_answer(settings: Settings) -> None:
    assert all(LocalServers(settings).status().values())
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo.uri.get_secret_value())
    assert (await mongo.admin.command("ping"))["ok"] == 1
    await mongo.close()
    assert minio_client(settings).bucket_exists(settings.storage.bucket)
    async with aiosmtplib.SMTP(hostname=settings.smtp.host, port=settings.smtp.port) as smtp:
        assert (await smtp.noop()).code == 250
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    assert isinstance(await admin.list_topics(), list)
    await admin.close()


def test_services_started_as_subprocesses_find_the_servers(settings: Settings) -> None:
    """The variables a child would export again are exactly the ones the session gave it."""
    expected = LocalServers(settings).env()
    child = subprocess.run([sys.executable, "-c", CHILD_ENV], capture_output=True, text=True, check=True)
    assert json.loads(child.stdout) == expected
    assert LocalServers(get_settings()).env() == expected


async def test_s3_presigned_get_works_and_expired_or_tampered_links_are_refused(settings: Settings) -> None:
    client = minio_client(settings)
    key = f"exports/{uuid.uuid4()}.csv"
    body = b"time,value\n2026-01-01T00:00:00Z,1.5\n"
    client.put_object(settings.storage.bucket, key, io.BytesIO(body), len(body), content_type="text/csv")

    url = client.presigned_get_object(settings.storage.bucket, key, expires=timedelta(minutes=5))
    short_lived = client.presigned_get_object(settings.storage.bucket, key, expires=timedelta(seconds=1))
    signature_at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    flipped = "0" if url[signature_at] != "0" else "1"
    tampered_signature = url[:signature_at] + flipped + url[signature_at + 1 :]
    other_key = url.replace(key, f"exports/{uuid.uuid4()}.csv")

    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
        assert (answer.status_code, answer.content) == (200, body)
        assert (await http.get(tampered_signature)).status_code == 403
        assert (await http.get(other_key)).status_code == 403
        await asyncio.sleep(2.1)
        assert (await http.get(short_lived)).status_code == 403


async def test_email_lands_as_eml_file_in_the_maildir(settings: Settings) -> None:
    maildir = LocalServers(settings).maildir
    before = stored_mails(maildir)
    message = EmailMessage()
    message["From"] = "exporter@localhost"
    message["To"] = "owner@example.com"
    message["Subject"] = f"Export ready {uuid.uuid4()}"
    message.set_content("Your export is ready.")

    await aiosmtplib.send(
        message,
        hostname=settings.smtp.host,
        port=settings.smtp.port,
        recipients=["owner@example.com", "audit@example.com"],
    )

    new = [path for path in stored_mails(maildir) if path not in before]
    assert len(new) == 1
    stored = email.message_from_bytes(new[0].read_bytes(), policy=email.policy.default)
    assert stored["Subject"] == message["Subject"]
    assert stored["X-RcptTo"] == "owner@example.com, audit@example.com"
    assert stored.get_content().strip() == "Your export is ready."
    assert [path.name for path in maildir.iterdir() if path.suffix != ".eml"] == []


async def test_kafka_produce_and_consume_round_trip(settings: Settings) -> None:
    topic = f"test.round-trip.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(5)}

    producer = AIOKafkaProducer(**client_options(settings.kafka), enable_idempotence=False)
    await producer.start()
    try:
        for key, value in sent.items():
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings.kafka),
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: dict[bytes, bytes] = {}
    try:
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                received.update(
                    (record.key, record.value) for record in records if record.key and record.value
                )
    finally:
        await consumer.stop()

    assert received == sent


def test_second_instance_runs_beside_the_session_and_stops_without_leftovers(
    settings: Settings, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    own = LocalServers(LocalServers.test_settings(run_dir))
    try:
        reports = own.start()
        pids = own.status()
        kafka_pid_file = (run_dir / "pids" / "kafka.pid").read_text()
        # Stopped the way `down` does it, from the PID files alone, even with other ports configured.
        LocalServers(LocalServers.test_settings(run_dir)).stop()
    finally:
        own.stop()

    assert [report.name for report in reports] == ["kafka", "s3", "mongo", "smtp"]
    assert all(report.version and report.started and report.ready_seconds > 0 for report in reports)
    assert {report.name: report.pid for report in reports} == pids
    assert own.status() == dict.fromkeys(pids)
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid or 0, 0)
    assert not any(port_open(int(report.address.rpartition(":")[2])) for report in reports)
    assert not list((run_dir / "pids").iterdir())
    assert all(LocalServers(settings).status().values())  # the session's servers are untouched

    # A stale PID file whose PID now belongs to an unrelated live process (here, this one).
    recorded_command = kafka_pid_file.partition("\n")[2]
    (run_dir / "pids" / "kafka.pid").write_text(f"{os.getpid()}\n{recorded_command}")
    assert own.status()["kafka"] is None
    own.stop()  # must not kill this test process


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_smtp_sink_can_require_starttls_and_auth(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    users = tmp_path / "users"
    users.write_text("notifier:s3cret\n")
    maildir = tmp_path / "mail"
    (port,) = free_ports(1)
    sink = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.local.smtp_sink",
        f"--port={port}",
        f"--maildir={maildir}",
        f"--tls-cert={cert}",
        f"--tls-key={key}",
        f"--users={users}",
    )
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "exporter@localhost", "owner@example.com", "secure"
    message.set_content("sent over STARTTLS with AUTH")
    send = functools.partial(aiosmtplib.send, message, hostname="127.0.0.1", port=port)
    try:
        for _ in range(300):
            if port_open(port):
                break
            await asyncio.sleep(0.05)

        with pytest.raises(aiosmtplib.SMTPResponseException):  # STARTTLS is required
            await send(start_tls=False)
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await send(start_tls=True, validate_certs=False, username="notifier", password="wrong")
        await send(start_tls=True, validate_certs=False, username="notifier", password="s3cret")

        stored = stored_mails(maildir)
        assert len(stored) == 1
        assert (
            email.message_from_bytes(stored[0].read_bytes(), policy=email.policy.default)["Subject"]
            == "secure"
        )
    finally:
        sink.terminate()
        await sink.wait()
