"""``python -m exporter.local run|up|down|status|env``: the embedded servers and the five services.

``run`` is ``make run``: servers, services and the demo export, then it waits for Ctrl-C, SIGTERM
or ``down`` from another shell and stops everything. ``up`` starts only the servers in the
background; ``env`` prints ``export`` lines (``eval "$(python -m exporter.local env)"``) that point
a shell's services at them. Settings come from the environment like everywhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
import time
from types import FrameType

from exporter.local.demo import run_demo
from exporter.local.servers import LocalServers, ProcessGroup, ServerNotReady, format_report
from exporter.local.services import LocalServices
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
        status = {**servers.status(), **services.status()}
        for name, pid in status.items():
            print(f"{name:<11} {'running, pid ' + str(pid) if pid else 'stopped'}")
        return 0 if all(status.values()) else 1
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
        print(asyncio.run(run_demo(settings, services.api_url, services.maildir)))
        print(
            f"\nThe API is at {services.api_url}/docs. Ctrl-C (or `make stop`) stops everything.", flush=True
        )
        while all(pid for group in groups for pid in group.status().values()):
            time.sleep(0.5)
        if crashed := [(group, name) for group in groups for name in group.exited()]:
            raise RuntimeError(
                ", ".join(f"{name} exited; see {group.log_path(name)}" for group, name in crashed)
            )
        print("stopped from another shell")
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


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
