"""Issue 14, findings 1 and 2: every mask, date, time and duration of a request is bounded at
``POST /exports`` (a 400 naming the field, never a 500 or a job that fails later), and so are the
list filters of ``GET /exports``; values at the bounds are accepted and scheduled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from exporter.contracts.time_bounds import LATEST_EPOCH_MS, LATEST_TIME
from exporter.settings import Settings
from tests.integration.api_server import isolated, serving
from tests.request_cases import BOUND_FIELDS, bad_body, with_fields

pytestmark = pytest.mark.servers

# The issue's own examples, exactly as reported.
ISSUE_EXAMPLES: list[tuple[dict[str, Any], str, str]] = [
    ({"format.filenameMask": "${item.index:2000000000}"}, "format.filenameMask", "zero-padding"),
    ({"items.0.filename": "${thing.bogus}"}, "items.0.filename", "thing.serialNumber"),
    ({"periodicity": "P3000Y"}, "periodicity", "at most P10Y"),
    ({"items.0.params.to": 10**15}, "items.0.params.to", str(LATEST_EPOCH_MS)),
    ({"startAt": "9999-06-01T00:00:00Z", "periodicity": "P1Y"}, "startAt", "2100-01-01"),
]


@pytest.fixture(scope="module")
async def api(servers: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(isolated(servers)) as url:
        headers = {"X-User-Id": f"mallory-{uuid.uuid4().hex[:6]}", "X-Tenant-Id": "acme"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as client:
            yield client


def assert_names(response: httpx.Response, field: str, words: str) -> None:
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith(f"{field}: ") or f"; {field}: " in message, message
    assert words in message, message


@pytest.mark.parametrize(("changes", "field", "words"), ISSUE_EXAMPLES)
async def test_the_issues_examples_are_400s_naming_the_field(
    api: httpx.AsyncClient, changes: dict[str, Any], field: str, words: str
) -> None:
    assert_names(await api.post("/exports", json=with_fields(changes)), field, words)


@pytest.mark.parametrize(("path", "value", "field", "words"), BOUND_FIELDS)
async def test_each_bound_is_a_400_naming_the_field(
    api: httpx.AsyncClient, path: str, value: Any, field: str, words: str
) -> None:
    assert_names(await api.post("/exports", json=bad_body(path, value)), field, words)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("createdFrom", "0001-01-01T00:00:00+01:00", "1970-01-01"),
        ("createdTo", "9999-12-31T23:59:59-14:00", "2100-01-01"),
        ("createdTo", "2100-01-01T00:00:01Z", "2100-01-01"),
        ("createdFrom", "1900-01-01T00:00:00Z", "1970-01-01"),
    ],
)
async def test_list_filters_are_bounded(api: httpx.AsyncClient, name: str, value: str, words: str) -> None:
    assert_names(await api.get("/exports", params={name: value}), f"query.{name}", words)


async def test_values_at_the_bounds_are_accepted_and_scheduled(api: httpx.AsyncClient) -> None:
    """The largest periods from the latest start: five runs listed, nothing overflows."""
    body = with_fields(
        {
            "startAt": "2100-01-01T00:00:00Z",
            "periodicity": "P10Y",
            "items.0.params.period": "P10Y",
            "items.0.params.from": LATEST_EPOCH_MS - 1,
            "items.0.params.to": LATEST_EPOCH_MS,
            "items.0.params.decimation": {"ds": "366d"},
            "format.filenameMask": "${item.index:012d}_${job.scheduledAt:%Y%m%d%H%M%S%j%y%b}_${thing.id:.88}",
        }
    )
    created = await api.post("/exports", json=body)
    assert created.status_code == 201, created.text
    runs = [datetime.fromisoformat(run) for run in created.json()["nextRunTimes"]]
    assert runs[0] == LATEST_TIME
    assert [run.year for run in runs] == [2100, 2110, 2120, 2130, 2140]
    widest = {"createdFrom": "1970-01-01T00:00:00Z", "createdTo": "2100-01-01T00:00:00Z"}
    listed = await api.get("/exports", params=widest)
    assert listed.status_code == 200
    assert created.json()["id"] in [item["id"] for item in listed.json()["items"]]
