"""The embedded MongoDB-wire server (SecantusDB), started with the lifetime of an abandoned
transaction that its command line does not offer.

A process killed inside a transaction leaves it open until the server reaps it, 60 s after its
last statement by default (mongod's ``transactionLifetimeLimitSeconds``). Meanwhile every other
writer's transactions ran several times slower (a killed scheduler replica's survivor took 20 s
a shard instead of 3), so on a loaded machine the survivor fell minutes behind. The server takes
the lifetime as a constructor argument only; this entry point passes it.

Usage: ``python -m exporter.local.mongo_server --transaction-lifetime-seconds=N <secantusd flags>``.
"""

from __future__ import annotations

import functools
import sys

from secantus import cli  # type: ignore[import-untyped]

FLAG = "--transaction-lifetime-seconds="


def main(argv: list[str]) -> int:
    lifetime = [float(arg.removeprefix(FLAG)) for arg in argv if arg.startswith(FLAG)]
    server = functools.partial(cli.SecantusDBServer, transaction_lifetime_seconds=lifetime[-1])
    setattr(cli, "SecantusDBServer", server)  # noqa: B010 (the module's name, replaced)
    return int(cli.main([arg for arg in argv if not arg.startswith(FLAG)]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
