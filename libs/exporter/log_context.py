"""Structured logs: the ids of the work in hand on every line, as JSON or as text.

Ids are context variables, set where they become known (the Kafka intake: topic, partition,
offset, trace id; the request-api: trace id and tenant; the renderer, notifier and scheduler: job,
request and tenant) and read by the formatters, so no call site passes them along. A task copies
the context it was created in: a render started from a message keeps that message's ids.

Only ids go in: never headers, query strings or settings, so no secret reaches a line through
here; uvicorn's access lines lose their query strings (signed links carry their signature there).
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from exporter.contracts.job import JobSpec

# The ids a line may carry, in the order they are shown.
ID_NAMES = ("trace_id", "tenant", "request_id", "job_id", "topic", "partition", "offset")
_IDS: dict[str, ContextVar[str | int | None]] = {name: ContextVar(name, default=None) for name in ID_NAMES}
# Bounded: an id comes from a message or a header that anyone may have written.
MAX_ID_CHARS = 200
# W3C Trace Context: version-traceid-parentid-flags.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
ACCESS_LOGGER = "uvicorn.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def current_ids() -> dict[str, str | int]:
    """The ids set in this context, without the unset ones."""
    return {name: value for name, var in _IDS.items() if (value := var.get()) is not None}


def _bounded(value: str | int | None) -> str | int | None:
    return value[:MAX_ID_CHARS] if isinstance(value, str) else value


class LogContext:
    """``log_context``'s result: a class rather than a generator, as it runs on every request."""

    __slots__ = ("_ids", "_tokens")

    def __init__(self, ids: dict[str, str | int | None]) -> None:
        self._ids = ids
        self._tokens: list[tuple[ContextVar[str | int | None], Token[str | int | None]]] = []

    def __enter__(self) -> None:
        self._tokens = [(_IDS[name], _IDS[name].set(_bounded(value))) for name, value in self._ids.items()]

    def __exit__(self, *_: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)


def log_context(**ids: str | int | None) -> LogContext:
    """Every line logged inside carries ``ids`` (None unsets one); the previous ids come back after."""
    return LogContext(ids)


def job_context(spec: JobSpec) -> LogContext:
    """A job's ids (job, request, tenant) on every line logged about it."""
    return log_context(job_id=spec.job_id, request_id=spec.request_id, tenant=spec.tenant)


def bind(**ids: str | int | None) -> None:
    """Sets ``ids`` for the rest of the current task (a request's tenant, once it is known); the
    enclosing ``log_context`` that unsets them at its end (the request's own) clears them."""
    for name, value in ids.items():
        _IDS[name].set(_bounded(value))


def trace_id_of(traceparent: str | bytes | None) -> str | None:
    """The trace id of a W3C ``traceparent`` value, or None when it is absent or malformed."""
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode(errors="replace")
    match = _TRACEPARENT.fullmatch(traceparent.strip().lower()) if traceparent else None
    return match.group(1) if match else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the ids in
    context, and the exception as text. Formatted as it is logged, so in the logging call's context."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **current_ids(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the ids in context appended as ``[name=value ...]``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        ids = current_ids()
        return f"{text} [{' '.join(f'{name}={value}' for name, value in ids.items())}]" if ids else text


class NoQueryString(logging.Filter):
    """uvicorn's access line without the query string: a signed download link's signature, or a
    token a client put there, would otherwise be in every log that keeps access lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def logging_config(level: str, log_format: Literal["json", "text"]) -> dict[str, Any]:
    """The one ``dictConfig`` for every process, uvicorn's too (it applies it in each worker):
    one handler on stderr, the root, FastStream's and uvicorn's loggers (the access log included)
    through it."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"no_query": {"()": NoQueryString}},
        "formatters": {"exporter": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "exporter",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # httpx's INFO line per request carries the whole URL: a webhook's path, a bot's token,
            # a signed link's signature. Its warnings and errors still come through.
            "httpx": {"level": max(level, "WARNING", key=logging.getLevelName)},
            # FastStream's own loggers come with handlers of their own, in their own format.
            "faststream": {"level": level, "handlers": [], "propagate": True},
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            ACCESS_LOGGER: {"level": level, "handlers": [], "propagate": True, "filters": ["no_query"]},
        },
    }


def configure(level: str, log_format: Literal["json", "text"]) -> None:
    logging.config.dictConfig(logging_config(level, log_format))
