"""The five services as child processes pointed at the local servers, for ``make run`` and the e2e tests.

They run exactly as in production (``python -m request_api`` etc.), configured only by the
``EXPORTER_*`` variables of the ``Settings`` given, with logs and PID files beside the servers'.
The consumers write their liveness reports to ``health/<service>.json`` there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from exporter.liveness import read_report
from exporter.local.servers import (
    LAUNCH_MARK,
    PROBE_TIMEOUT_SECONDS,
    LocalServers,
    ProcessGroup,
    ProcessSpec,
    ServerNotReady,
    ServerReport,
)
from exporter.settings import Settings

API = "request_api"
# What each consumer logs once it is subscribed and working.
READY_LINES = {
    "scheduler": "FastStream app started successfully",
    "renderer": "FastStream app started successfully",
    "notifier": "FastStream app started successfully",
    "ingestor": "FastStream app started successfully",
}


class LocalServices(ProcessGroup):
    """Starts, checks and stops the five services, configured by a ``Settings`` object."""

    kind = "service"

    def __init__(self, settings: Settings, replicas: Mapping[str, int] | None = None) -> None:
        """``replicas``: how many processes of a consumer service to run (default one each); the
        second ``scheduler`` is named ``scheduler-2``, with its own log and PID file."""
        self.settings = settings
        self.replicas = dict(replicas or {})
        if unknown := self.replicas.keys() - READY_LINES.keys():
            raise ValueError(f"replicas of {sorted(unknown)}: only {sorted(READY_LINES)} may have several")
        if any(count < 1 for count in self.replicas.values()):
            raise ValueError(f"replicas must be at least 1: {self.replicas}")
        self._servers = LocalServers(settings)
        super().__init__(settings.local.run_dir)

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api.host}:{self.settings.api.port}"

    @property
    def maildir(self) -> Path:
        return self._servers.maildir

    def env(self) -> dict[str, str]:
        """A child's whole environment: ``settings`` and nothing else decides its ``Settings()``."""
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("EXPORTER_")}
        return {**inherited, **self.settings.to_env(), **self._servers.env()}

    def health_path(self, name: str) -> Path:
        return self.run_dir / "health" / f"{name}.json"

    def health(self) -> dict[str, str]:
        """Each running service's liveness: "ok", or what is wrong."""
        verdicts = {}
        for name, pid in self.status().items():
            if pid is None:
                continue
            try:
                problem = self._api_health() if name == API else self._file_health(name)
            except Exception as error:  # an answer that is not ok, or none
                problem = str(error)
            verdicts[name] = problem or "ok"
        return verdicts

    def start(self, timeout: float = 60.0) -> list[ServerReport]:
        """Starts the services not running and waits until the API answers and each consumer works.

        The servers must be up already: without them a service would only retry until the timeout.
        """
        if stopped := [name for name, pid in self._servers.status().items() if pid is None]:
            raise ServerNotReady(f"local servers not running: {', '.join(stopped)}; start them first")
        return super().start(timeout)

    def _define(self) -> list[ProcessSpec]:
        env = self.env()
        return [
            ProcessSpec(
                name=API, port=self.settings.api.port, launch=_command(API), probe=self._ready, env=env
            ),
            *(
                ProcessSpec(
                    name=replica,
                    port=None,
                    launch=_command(service),
                    probe=self._logged(replica, line),
                    env={**env, "EXPORTER_LIVENESS__FILE": str(self.health_path(replica))},
                )
                for service, line in READY_LINES.items()
                for replica in replica_names(service, self.replicas.get(service, 1))
            ),
        ]

    def _ready(self) -> str:
        if problem := self._api_health():
            raise ConnectionError(problem)
        return "GET /health: 200"

    def _api_health(self) -> str | None:
        with httpx.Client(timeout=PROBE_TIMEOUT_SECONDS, trust_env=False) as client:
            answer = client.get(f"{self.api_url}/health")
        return None if answer.status_code == 200 else f"GET /health: {answer.status_code} {answer.text}"

    def _file_health(self, name: str) -> str | None:
        return read_report(self.health_path(name), self.settings.liveness.stall_seconds)

    def _logged(self, name: str, line: str) -> Callable[[], str]:
        """A probe that passes once the service's current run has logged ``line``."""
        log = self.log_path(name)

        def probe() -> str:
            if line not in log.read_text(errors="replace").rpartition(LAUNCH_MARK)[2]:
                raise LookupError(f"{line!r} not logged yet")
            return f"logged {line!r}"

        return probe


def replica_names(service: str, count: int) -> list[str]:
    """``scheduler``, ``scheduler-2``, …: the first keeps the service's name, as ``make run`` has it."""
    return [service if number == 1 else f"{service}-{number}" for number in range(1, count + 1)]


def _command(service: str) -> Callable[[], list[str]]:
    return lambda: [sys.executable, "-m", service]
