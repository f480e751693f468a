"""``python -m exporter.local up|down|status|env``: the embedded servers for ``make run``.

``up`` starts them in the background and returns once all answer; ``env`` prints ``export`` lines
(``eval "$(python -m exporter.local env)"``) that point a shell's services at them. Settings come
from the environment like everywhere else.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from exporter.local.servers import LocalServers, ServerNotReady, format_report
from exporter.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.local", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the servers to answer"
    )
    args = parser.parse_args(argv)
    servers = LocalServers(get_settings())

    if args.command == "up":
        try:
            print(format_report(servers.start(timeout=args.timeout)))
        except ServerNotReady as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    elif args.command == "down":
        servers.stop()
        print(f"stopped (run dir {servers.run_dir})")
    elif args.command == "status":
        status = servers.status()
        for name, pid in status.items():
            print(f"{name:<6} {'running, pid ' + str(pid) if pid else 'stopped'}")
        return 0 if all(status.values()) else 1
    else:
        for name, value in servers.env().items():
            print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
