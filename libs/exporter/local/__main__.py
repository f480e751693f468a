"""``python -m exporter.local run|up|down|status|env``: the embedded servers and the five services.

``run`` is ``make run``: servers, services and the demo export, then it supervises them (a process
that exits is restarted, see ``exporter.local.supervisor``) until Ctrl-C, SIGTERM or ``down`` from
another shell, and stops everything. The demo runs beside the supervision: if it fails or times
out it says which step and why, and the system stays up. ``up`` starts only the servers in the
background; ``env`` prints ``export`` lines (``eval "$(python -m exporter.local env)"``) that point
a shell's services at them. Settings come from the environment like everywhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
import threading
from types import FrameType

from exporter.local.demo import run_demo
from exporter.local.servers import LocalServers, ProcessGroup, ServerNotReady, format_report
from exporter.local.services import LocalServices
from exporter.local.supervisor import Supervisor
from exporter.settings import Settings, get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.local", description=__doc__)
    parser.add_argument("command", choices=["run", "up", "down", "status", "env"])
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each group to be ready"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    servers, services = LocalServers(settings), LocalServices(settings)

    if args.command == "run":
        return run(settings, servers, services, args.timeout)
    if args.command == "up":
        try:
            print(format_report(servers.start(timeout=args.timeout)))
        except ServerNotReady as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    elif args.command == "down":
        services.stop()
        servers.stop()
        print(f"stopped (run dir {servers.run_dir})")
    elif args.command == "status":
        return status(servers, services)
    else:
        for name, value in servers.env().items():
            print(f"export {name}={shlex.quote(value)}")
    return 0


def run(settings: Settings, servers: LocalServers, services: LocalServices, timeout: float) -> int:
    """Everything up, the demo export, then wait; whatever happens, everything is stopped again."""
    groups: list[ProcessGroup] = [servers, services]
    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C, so the stopping below runs
    try:
        for group in groups:
            print(format_report(group.start(timeout)), flush=True)
        supervisor = Supervisor(groups, say=lambda line: print(line, flush=True))
        threading.Thread(target=demo, args=(settings, services), daemon=True).start()
        stopped = supervisor.run()
        print(f"stopped from another shell ({', '.join(stopped)} stopped)")
    except KeyboardInterrupt:
        print("\nstopping")
    except Exception as error:
        print(f"error: {error}", file=sys.stderr)
        logs = [group.log_path(name) for group in groups for name in group.status()]
        print("\n".join(f"  log: {log}" for log in logs if log.exists()), file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        services.stop()
        servers.stop()
    return 0


def demo(settings: Settings, services: LocalServices) -> None:
    """The demo export, then where the API is; a failed demo is reported and changes nothing else."""
    try:
        print(asyncio.run(run_demo(settings, services.api_url, services.maildir)), flush=True)
    except Exception as error:
        print(f"demo: {str(error) or type(error).__name__}. The servers and services stay up.", flush=True)
    metrics = "\n".join(f"  {name:<11} {url}" for name, url in services.metrics_urls().items())
    print(f"\nPrometheus metrics:\n{metrics}", flush=True)
    print(f"\nThe API is at {services.api_url}/docs, the console at {services.api_url}/console.", flush=True)
    print("Ctrl-C (or `make stop`) stops everything.", flush=True)


def status(servers: LocalServers, services: LocalServices) -> int:
    """Each process with its PID, restarts and (for services) liveness; 1 unless all are well."""
    pids = {**servers.status(), **services.status()}
    restarts = {**servers.restarts(), **services.restarts()}
    health = services.health()
    for name, pid in pids.items():
        line = f"running, pid {pid}, restarts {restarts[name]}" if pid else "stopped"
        print(f"{name:<11} {line}{', ' + health[name] if name in health else ''}")
    return 0 if all(pids.values()) and all(verdict == "ok" for verdict in health.values()) else 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
