"""Container health check for the Exporter services (copied into the image as /app/healthcheck.py).

    python /app/healthcheck.py http [--ready]           # request_api: GET /health (/ready) is 200
    python /app/healthcheck.py worker MODULE [--ready]  # a Kafka worker: see below

What ``worker`` proves: a live (not zombie, not stopped) ``python -m MODULE`` process runs in
this container, every Kafka bootstrap server accepts a TCP connection from it, and, when
``EXPORTER_LIVENESS__FILE`` is set, the liveness report it writes there is fresh and ok (each
of its loops is making progress; see ``exporter.liveness``).

``--ready`` checks readiness instead of liveness: also that MongoDB, Kafka and S3 answered the
process's latest background check (the ``ready`` of its report; ``/ready`` for the API).

Only the standard library and the project's own settings object are used, so the check reads
its configuration from the same EXPORTER_* variables as the service it checks.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 3.0


def check_http(port: int, path: str = "/health") -> str | None:
    """None when ``GET http://127.0.0.1:PORT/PATH`` answers 200, otherwise the reason."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            if response.status != 200:
                return f"{url} answered {response.status}"
    except (urllib.error.URLError, OSError) as error:
        return f"{url} failed: {error}"
    return None


def find_module_process(module: str, proc: Path = Path("/proc")) -> str | None:
    """None when a running ``python -m MODULE`` process exists, otherwise the reason."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked, or is not ours to read
            continue
        args = [part.decode(errors="replace") for part in argv if part]
        # The interpreter itself, not a wrapper such as docker-init whose argv repeats the command.
        if len(args) < 3 or not Path(args[0]).name.startswith("python") or args[1:3] != ["-m", module]:
            continue
        # The state is the first field after the command name, which is in parentheses.
        state = stat.rsplit(")", 1)[-1].split()[0]
        if state in {"Z", "X", "T", "t"}:
            return f"python -m {module} is in state {state}"
        return None
    return f"no running python -m {module} process"


def check_tcp(bootstrap_servers: str) -> str | None:
    """None when every ``host:port`` in the comma-separated list accepts a TCP connection."""
    for server in (part.strip() for part in bootstrap_servers.split(",")):
        if not server:
            continue
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT_SECONDS):
                pass
        except (OSError, ValueError) as error:
            return f"{server} unreachable: {error}"
    return None


def main(argv: list[str]) -> int:
    from exporter.liveness import read_report
    from exporter.settings import Settings

    settings = Settings()
    ready = argv[-1:] == ["--ready"]
    argv = argv[:-1] if ready else argv
    if argv[:1] == ["http"] and len(argv) == 1:
        problem = check_http(settings.api.port, "/ready" if ready else "/health")
    elif argv[:1] == ["worker"] and len(argv) == 2:
        liveness = settings.liveness
        problem = (
            find_module_process(argv[1])
            or check_tcp(settings.kafka.bootstrap_servers)
            or (read_report(liveness.file, liveness.stall_seconds, ready=ready) if liveness.file else None)
        )
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
