"""Structured logs: the formats, the ids in context, where they come from, and what never goes in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from exporter.adapters.kafka import message_ids
from exporter.adapters.mongo.requests import Identity, Unreadable
from exporter.log_context import (
    MAX_ID_CHARS,
    JsonFormatter,
    NoQueryString,
    TextFormatter,
    bind,
    current_ids,
    log_context,
    trace_id_of,
)
from exporter.settings import SchedulerSettings, Settings
from request_api.request_ids import trace_id
from scheduler import firing
from scheduler.firing import plan_or_pause

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own whose lines go to a string; formatters are set by each test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(f"tests.log_context.{id(stream)}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def formatted(logger: logging.Logger, formatter: logging.Formatter) -> None:
    logger.handlers[0].setFormatter(formatter)


def test_a_json_line_is_one_object_with_time_level_logger_message_ids_and_exception(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = lines
    formatted(logger, JsonFormatter())
    with log_context(job_id="job-1", request_id="req-1", tenant="acme", partition=2, offset=41):
        try:
            raise RuntimeError("the store went away")
        except RuntimeError:
            logger.exception("job %s failed", "job-1")
    logger.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["time"].endswith("Z")
    assert datetime.fromisoformat(first["time"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert {key: first[key] for key in ("level", "logger", "message")} == {
        "level": "ERROR",
        "logger": logger.name,
        "message": "job job-1 failed",
    }
    assert {key: first[key] for key in ("job_id", "request_id", "tenant", "partition", "offset")} == {
        "job_id": "job-1",
        "request_id": "req-1",
        "tenant": "acme",
        "partition": 2,
        "offset": 41,
    }
    assert first["exception"].startswith("Traceback")
    assert "RuntimeError: the store went away" in first["exception"]
    assert set(second) == {"time", "level", "logger", "message"}  # the ids ended with their context


def test_a_text_line_appends_the_ids_in_context(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines
    formatted(logger, TextFormatter())
    with log_context(topic="export.requested", offset=7):
        logger.info("handled")
    logger.info("idle")
    handled, idle = stream.getvalue().splitlines()
    assert handled.endswith("INFO " + logger.name + ": handled [topic=export.requested offset=7]")
    assert idle.endswith(": idle")


def test_contexts_nest_unset_with_none_and_restore_what_was_there() -> None:
    with log_context(tenant="acme", job_id="outer"):
        with log_context(job_id="inner", tenant=None):
            assert current_ids() == {"job_id": "inner"}
        assert current_ids() == {"tenant": "acme", "job_id": "outer"}
        with log_context(tenant=None):  # as the request-api's context for each request
            bind(tenant="other")  # bound within: gone once the context that unset it ends
            assert current_ids()["tenant"] == "other"
        assert current_ids() == {"tenant": "acme", "job_id": "outer"}
    assert current_ids() == {}


def test_an_id_is_bounded_whatever_its_sender_wrote() -> None:
    with log_context(trace_id="x" * 100_000):
        assert current_ids()["trace_id"] == "x" * MAX_ID_CHARS


def test_only_a_well_formed_traceparent_gives_a_trace_id() -> None:
    assert trace_id_of(TRACEPARENT) == TRACE
    assert trace_id_of(TRACEPARENT.upper().encode()) == TRACE
    assert trace_id_of(f"00-{TRACE}-00f067aa0ba902b7") is None
    assert trace_id_of("00-" + "z" * 32 + "-00f067aa0ba902b7-01") is None
    assert trace_id_of(None) is None


def test_the_access_line_loses_its_query_string() -> None:
    """A signed download link carries its signature in the query."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/jobs/j-1/download?X-Amz-Signature=abc123&token=s3cr3t", "1.1", 307),
        None,
    )
    assert NoQueryString().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /jobs/j-1/download HTTP/1.1" 307'


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def test_a_consumed_message_gives_its_topic_partition_offset_and_trace_id() -> None:
    event = b'{"id": "evt-1", "type": "exporter.export.requested.v1"}'
    traced = Record("export.requested", 3, 17, event, [("traceparent", TRACEPARENT.encode())])
    assert message_ids((traced,)) == {
        "topic": "export.requested",
        "partition": 3,
        "offset": 17,
        "trace_id": TRACE,
    }
    # Without a traceparent, the event's own id; without one either, none.
    assert message_ids((Record("export.requested", 3, 18, event),))["trace_id"] == "evt-1"
    assert message_ids((Record("export.requested", 3, 19, b"not json"),))["trace_id"] is None
    assert message_ids((Record("export.requested", 3, 20, b'{"id": 5}'),))["trace_id"] is None
    assert message_ids((Record("export.requested", 3, 21, b"{" * 200_000),))["trace_id"] is None


def test_a_batch_gives_its_topic_and_its_one_partition_but_no_offset() -> None:
    one = (Record("messages", 1, 5, b"{}"), Record("messages", 1, 6, b"{}"))
    assert message_ids(one) == {"topic": "messages", "partition": 1}
    mixed = (Record("messages", 1, 5, b"{}"), Record("messages", 2, 6, b"{}"))
    assert message_ids(mixed) == {"topic": "messages", "partition": None}
    assert message_ids(()) == {}


def test_an_http_request_is_traced_by_traceparent_else_its_request_id_else_a_new_id() -> None:
    assert trace_id([(b"x-request-id", b"abc-1"), (b"traceparent", TRACEPARENT.encode())]) == TRACE
    assert trace_id([(b"x-request-id", b"abc-1")]) == "abc-1"
    made = trace_id([(b"x-request-id", b"a b\n{}" + b"x" * 500)])
    assert len(made) == 32
    assert made != trace_id([])


def test_the_log_format_is_json_or_text() -> None:
    assert Settings(log_format="json").log_format == "json"
    with pytest.raises(ValidationError):
        Settings(log_format="xml")


def test_the_scheduler_s_line_about_a_request_carries_its_request_and_tenant() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(firing.log.name)
    logger.addHandler(handler)
    try:
        entry = Unreadable(Identity("r-9", "acme", "alice", 4), datetime.now(UTC), "items.0: field required")
        plan_or_pause(SchedulerSettings(), entry, datetime.now(UTC))
    finally:
        logger.removeHandler(handler)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["request_id"], line["tenant"], line["level"]) == ("r-9", "acme", "ERROR")
