"""What every benchmark shares: the local servers in a scratch directory, a service as a child
process, CPU accounting per process, and percentiles.

Benchmarks print figures; they never assert timings (the machines are shared and noisy)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from exporter.local.servers import LocalServers
from exporter.local.services import LocalServices
from exporter.settings import Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def local_servers() -> Iterator[tuple[Settings, LocalServers]]:
    """Fresh servers on free ports with empty stores, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="exporter-bench-") as scratch:
        settings = LocalServers.test_settings(Path(scratch))
        servers = LocalServers(settings)
        servers.start()
        try:
            yield settings, servers
        finally:
            servers.stop()


def launch(settings: Settings, module: str, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """``python -m <module>`` configured for ``settings`` alone, as in production; its output goes
    to ``log`` when given (FastStream logs every message it handles), else to ours."""
    env = {**LocalServices(settings).env(), "EXPORTER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", module], env=env, stdout=log, stderr=log and subprocess.STDOUT
    )


@contextlib.contextmanager
def service(
    settings: Settings, module: str, ready_url: str | None = None, log: IO[bytes] | None = None
) -> Iterator[int]:
    """``launch``, ready when ``ready_url`` answers; yields its PID and stops it afterwards."""
    child = launch(settings, module, log)
    try:
        if ready_url is not None:
            _wait_for(ready_url, child)
        yield child.pid
    finally:
        child.terminate()
        child.wait(timeout=20)


def _wait_for(url: str, child: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{child.args!r} exited with {child.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its live children have used so far (Linux /proc),
    so that a server with worker processes counts as one."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = _stat(int(entry.name))
            if int(entry.name) == pid or int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def server_pid(servers: LocalServers, name: str) -> int:
    pid = servers.status()[name]
    if pid is None:
        raise RuntimeError(f"local server {name} is not running")
    return pid


@dataclass
class CpuMeter:
    """CPU seconds each named process spends between ``start()`` and ``stop()``."""

    pids: dict[str, int]

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._self_before = time.process_time()

    def stop(self) -> dict[str, float]:
        used = {name: cpu_seconds(pid) - self._before[name] for name, pid in self.pids.items()}
        return {**used, "load generator": time.process_time() - self._self_before}


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def reset_peak_rss(pid: int) -> None:
    """Starts a new peak for ``peak_rss``, so one process can be measured job by job (Linux)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss(pid: int) -> int:
    """The most resident memory ``pid`` has held since it started or ``reset_peak_rss``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
