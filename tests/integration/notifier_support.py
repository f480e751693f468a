"""Real servers for the notifier's tests: an SMTP server with TLS and AUTH, a chat API receiver.

``ChatReceiver`` is a local HTTP server that answers like Slack's Web API (with the
``files_upload_v2`` flow), Telegram's Bot API and Discord's webhooks, records every request, and
can be told to fail or hang. ``Mailbox`` keeps what an aiosmtpd server accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug import Request, Response

from exporter.adapters.mongo.jobs import new_job_document
from exporter.contracts.base import utcnow
from exporter.contracts.events import ExportCompleted, ExportCompletedData
from exporter.contracts.job import Delivery, JobFile, JobResult, JobSpec
from exporter.domain.job_life import JobStatus
from exporter.domain.jobs import pending_deliveries
from exporter.local.smtp_sink import PasswordFile
from exporter.runtime import Runtime
from exporter.settings import Settings
from notifier.app import build_senders
from notifier.delivery import Notifier
from notifier.redaction import Redactor, notifier_secrets
from tests.notify_cases import TENANT, job_spec

LOOPBACK = "127.0.0.1"
SLACK_TOKEN = "xoxb-test-bot-token"
TELEGRAM_TOKEN = "123456:telegram-test-token"
FINAL = {"sent", "skipped", "failed"}
T = TypeVar("T")
ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
ASGISend = Callable[[dict[str, Any]], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


# --- TLS -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(folder: Path) -> Certificate:
    """A certificate for 127.0.0.1 that signs itself: clients trust it through ``ca_file``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exporter test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(folder / "smtp.pem", folder / "smtp.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


# --- SMTP ----------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps accepted messages; refuses or greylists chosen recipients."""

    messages: list[Envelope] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    greylist: set[str] = field(default_factory=set)
    # Per accepted message: whether its session was encrypted, and authenticated.
    secured: list[tuple[bool, bool]] = field(default_factory=list)
    # Per accepted message: the client's address and port, one per connection.
    peers: list[Any] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if address in self.greylist:
            self.greylist.discard(address)
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        encrypted = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        self.secured.append((encrypted, bool(session.authenticated)))
        self.peers.append(session.peer)
        self.messages.append(envelope)
        return "250 Message accepted"


@contextmanager
def smtp_server(
    mailbox: Mailbox, certificate: Certificate, users: Path, *, implicit_tls: bool
) -> Iterator[int]:
    """aiosmtpd on a free port requiring AUTH over TLS: STARTTLS, or TLS from the first byte."""
    port = free_port()
    tls = certificate.server_context()
    options: dict[str, Any] = {"authenticator": PasswordFile(users), "auth_required": True}
    if implicit_tls:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS from its first byte.
        controller = Controller(
            mailbox, hostname=LOOPBACK, port=port, ssl_context=tls, auth_require_tls=False, **options
        )
    else:
        controller = Controller(
            mailbox, hostname=LOOPBACK, port=port, tls_context=tls, require_starttls=True, **options
        )  # auth_require_tls defaults to True: no AUTH before STARTTLS
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


# --- Chat APIs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    data: bytes
    at: float

    @cached_property
    def _parsed(self) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
        """Parsed when first looked at: multipart parsing is most of the receiver's work, and the
        benchmark, which shares the cores with the notifier, never looks.
        """
        request = Request(
            {
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(self.data)),
                "wsgi.input": io.BytesIO(self.data),
            }
        )
        files = {name: (f.filename or "", f.read()) for name, f in request.files.items()}
        return dict(request.form.items()), files

    @property
    def form(self) -> dict[str, str]:
        return self._parsed[0]

    @property
    def files(self) -> dict[str, tuple[str, bytes]]:
        return self._parsed[1]


Reply = Callable[[Received], Response]


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def _environ(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The WSGI environ of an ASGI request, for werkzeug's parsing of forms and files."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"].encode().decode("latin1"),
        "QUERY_STRING": scope["query_string"].decode("latin1"),
        "SERVER_NAME": LOOPBACK,
        "SERVER_PORT": str(scope["server"][1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in scope["headers"]:
        key = name.decode("latin1").upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value.decode("latin1")
    environ["CONTENT_LENGTH"] = str(len(body))
    return environ


class ChatReceiver:
    """Slack, Telegram and Discord in one local HTTP server, recording what they were sent.

    Served by uvicorn, which keeps connections open as the real APIs do (werkzeug's development
    server closes each after one request, so every call would pay a new connection).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._once: dict[str, list[Reply]] = {}
        self._holds: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._port = free_port()
        config = uvicorn.Config(
            self._serve,
            host=LOOPBACK,
            port=self._port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="chat receiver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the chat receiver did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        for gate in self._holds.values():
            gate.set()
        self._server.should_exit = True
        self._thread.join(30)

    def url_for(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self._port}/{path.lstrip('/')}"

    @property
    def slack_api(self) -> str:
        return self.url_for("/api/")

    @property
    def telegram_api(self) -> str:
        return self.url_for("")

    def webhook(self, name: str) -> str:
        return self.url_for(f"/webhooks/{name}")

    def then(self, path: str, *replies: Reply) -> None:
        """The next requests to ``path`` get these replies, in order; later ones the default."""
        with self._lock:
            self._once.setdefault(path, []).extend(replies)

    def hold(self, path: str) -> threading.Event:
        """Requests to ``path`` wait (after being recorded) until the returned event is set."""
        gate = self._holds[path] = threading.Event()
        return gate

    def calls(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    async def _serve(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        """The ASGI application: records the request, then answers it (once let through)."""
        assert scope["type"] == "http"
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received = self._record(Request(_environ(scope, bytes(body))))
        with self._lock:
            self.received.append(received)
            queued = self._once.get(received.path)
            reply = queued.pop(0) if queued else None
        if gate := self._holds.get(received.path):
            await asyncio.to_thread(gate.wait, 60)
        response = reply(received) if reply else self._default(received)
        headers = [
            (name.lower().encode("latin1"), value.encode("latin1")) for name, value in response.headers
        ]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": response.get_data()})

    @staticmethod
    def _record(request: Request) -> Received:
        data = request.get_data()
        return Received(
            path=request.path,
            query=dict(request.args.items()),
            headers=dict(request.headers.items()),
            json=json.loads(data) if request.is_json and data else None,
            data=data,
            at=time.monotonic(),
        )

    def _default(self, received: Received) -> Response:
        path = received.path
        if path == "/api/files.getUploadURLExternal":
            file_id = f"F{uuid.uuid4().hex[:8].upper()}"
            return json_reply(
                {"ok": True, "file_id": file_id, "upload_url": self.url_for(f"/upload/{file_id}")}
            )
        if path == "/api/files.completeUploadExternal":
            files = json.loads(received.form.get("files") or received.query.get("files") or "[]")
            return json_reply({"ok": True, "files": files})
        if path.startswith("/api/"):
            return json_reply({"ok": True, "channel": "C0123456789", "ts": "1700000000.000100"})
        if path.startswith("/upload/"):
            return Response(f"OK - {len(received.data)}", status=200)
        if path.startswith("/bot"):
            return json_reply({"ok": True, "result": {"message_id": len(self.received)}})
        if path.startswith("/webhooks/"):
            return json_reply({"id": str(len(self.received))})
        return Response("not found", status=404)


def chat_receiver() -> Iterator[ChatReceiver]:
    """For a module's fixture: ``chat = pytest.fixture(scope="module")(chat_receiver)``."""
    receiver = ChatReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


# --- Jobs and the notifier -----------------------------------------------------------------------


def test_destinations(chat: ChatReceiver) -> dict[str, Any]:
    """What the test jobs' tenant may reach: webhooks at ``chat``, the channels and chats the
    tests name, and mail at example.com."""
    return {
        "slack_webhooks": {"ops": chat.webhook("slack-ops")},
        "discord_webhooks": {"ops": chat.webhook("discord-ops"), "dev": chat.webhook("discord-dev")},
        "slack_channels": ["C0AAAAAAA1", "C0BBBBBBB2", "C0CCCCCCC3", "C0DDDDDDD4", "C0BENCH001"],
        "telegram_chats": [*(f"-100{number}" for number in range(1, 8)), "-2001", "-100200300"],
        "email_domains": ["example.com"],
        "contacts": [{"owner": "*", "email": ["owner@example.com"]}],
    }


def notifier_settings(base: Settings, chat: ChatReceiver, **notifier: Any) -> Settings:
    """``base`` with every medium pointed at ``chat``, fast retries, and ``notifier`` overrides."""
    values: dict[str, Any] = {
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "max_attempts": 3,
        "sweep_interval_seconds": 0.5,
        "tenants": {TENANT: test_destinations(chat)},
        "slack": {"base_url": chat.slack_api, "bot_token": SLACK_TOKEN},
        "telegram": {"base_url": chat.telegram_api, "bot_token": TELEGRAM_TOKEN},
        **notifier,
    }
    merged = base.notifier.model_validate({**base.notifier.model_dump(), **values})
    return base.model_copy(update={"notifier": merged})


def make_notifier(runtime: Runtime, settings: Settings) -> Notifier:
    runtime.settings = settings
    return Notifier(runtime, build_senders(settings), Redactor(notifier_secrets(settings)))


async def finished_job(
    runtime: Runtime,
    messages: list[dict[str, Any]],
    folder: Path,
    *,
    status: JobStatus = JobStatus.DONE,
    files: dict[str, bytes] | None = None,
    owner: str = "alice",
    tenant: str = TENANT,
) -> tuple[JobSpec, JobResult]:
    """A job that ran and finished, its files in the object store, its deliveries pending."""
    spec = job_spec(messages, job_id=f"r1-{uuid.uuid4().hex[:10]}", owner=owner, tenant=tenant)
    job_files = []
    for name, content in (files or {}).items():
        key = f"test/{spec.job_id}/{name}"
        path = folder / name
        path.write_bytes(content)
        stored = await runtime.storage.upload_file(key, path, "text/csv")
        job_files.append(
            JobFile(
                key=key, name=name, size_in_bytes=stored.size, rows=1, checksum="-", content_type="text/csv"
            )
        )
    result = JobResult(
        status=status,
        bucket=runtime.storage.bucket,
        files=job_files,
        row_count=len(job_files),
        size_in_bytes=sum(f.size_in_bytes for f in job_files),
        error="renderer: disk full" if status is JobStatus.FAILED else None,
        started_at=utcnow(),
        completed_at=utcnow(),
    )
    await runtime.jobs.add(new_job_document(spec, pending_deliveries(spec.request)))
    assert await runtime.jobs.start(spec.job_id, dt.timedelta(seconds=60))
    assert await runtime.jobs.finish(spec.job_id, result)
    return spec, result


def completed_event(spec: JobSpec, result: JobResult) -> ExportCompleted:
    return ExportCompleted(
        id=f"{spec.job_id}:completed",
        source="test",
        subject=spec.job_id,
        tenant=spec.tenant,
        data=ExportCompletedData.from_result(spec.job_id, spec.request_id, result),
    )


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, seconds: float = 30.0) -> T:
    """Polls ``probe`` until it returns something, or fails the test naming what never came."""
    deadline = time.monotonic() + seconds
    while (result := await probe()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return result


async def entries_when(
    runtime: Runtime, job_id: str, ready: Callable[[list[Delivery]], bool], what: str
) -> list[Delivery]:
    """The job's deliveries once ``ready`` holds for them."""

    async def probe() -> list[Delivery] | None:
        job = await runtime.jobs.get(job_id)
        assert job is not None
        return job.notifications if ready(job.notifications) else None

    return await eventually(probe, f"{what} of {job_id}")


async def deliveries(runtime: Runtime, job_id: str) -> list[Delivery]:
    """The job's deliveries once every one is final."""
    return await entries_when(
        runtime, job_id, lambda entries: all(e.status in FINAL for e in entries), "final deliveries"
    )


# --- The notifier as a real process --------------------------------------------------------------

READY_LINE = "FastStream app started successfully"


class NotifierProcess:
    """``python -m notifier`` configured by ``settings`` alone, as in production; killable."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self._settings = settings
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self, seconds: float = 60.0) -> None:
        start = self._log.stat().st_size if self._log.exists() else 0
        self._process = self._launch()
        deadline = time.monotonic() + seconds
        while READY_LINE not in self._log.read_bytes()[start:].decode(errors="replace"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the notifier did not start:\n{self._log.read_text(errors='replace')[-3000:]}")
            await asyncio.sleep(0.1)

    def _launch(self) -> subprocess.Popen[bytes]:
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("EXPORTER_")}
        with self._log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "notifier"],
                env={**inherited, **self._settings.to_env()},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine dies."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(30)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(30)
