"""The parser, and the one place where errors become messages and exit codes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from exporter.cli import dlq, download, exports, jobs, operations, topics
from exporter.cli.client import ApiError
from exporter.cli.config import ConfigError
from exporter.cli.session import Session

OK, FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="exporter",
        description="Exporter's command line: exports and jobs over the API; DLQ, outbox, topics and "
        "health for operators.",
        epilog="Exit codes: 0 ok, 1 failed job or check, 2 usage, 3 API or transport error. "
        "Environment: EXPORTER_API_URL, EXPORTER_TOKEN, EXPORTER_TENANT, EXPORTER_USER, EXPORTER_PROFILE; "
        "operator commands read the services' EXPORTER_* settings.",
    )
    root.add_argument("-o", "--output", choices=("table", "json"), default="table")
    root.add_argument("--profile", help="a profile of ~/.config/exporter/profiles.toml")
    root.add_argument("--api-url", help="the request-api's base URL (default http://127.0.0.1:8080)")
    root.add_argument("--tenant", help="development identity: X-Tenant-Id")
    root.add_argument("--user", help="development identity: X-User-Id")
    root.add_argument("--timeout", type=float, help="seconds per HTTP request (default 30)")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (exports, jobs, download, dlq, topics, operations):
        group.register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    session = Session(args)
    try:
        code: int = args.run(session, args)
        return code
    except ConfigError as error:
        return _fail(session, str(error), USAGE)
    except ApiError as error:
        return _fail(session, str(error), UNREACHABLE)
    except (KafkaError, PyMongoError, TimeoutError, ConnectionError) as error:
        return _fail(session, f"{type(error).__name__}: {error}", UNREACHABLE)
    except ValueError as error:  # input the command cannot use: a spec file, an offset, a name
        return _fail(session, str(error), USAGE)
    except OSError as error:
        return _fail(session, f"{error.filename or ''}: {error.strerror}", FAILED)
    except KeyboardInterrupt:
        return _fail(session, "interrupted", FAILED)
    finally:
        session.close()


def _fail(session: Session, message: str, code: int) -> int:
    session.note(f"error: {message}")
    return code
