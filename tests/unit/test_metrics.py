"""Every metric family is named by Prometheus' conventions, and no label can take a value that a
client, a tenant or a message chose."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest
from pydantic import ValidationError

from exporter import metrics
from exporter.adapters.kafka import consumer_metrics
from exporter.local.servers import free_ports
from exporter.metrics.http import HttpMetrics
from exporter.metrics.serving import listen
from exporter.settings.metrics import MetricsSettings
from tests.metric_samples import sample

NAME = re.compile(r"^exporter_[a-z][a-z0-9_]*[a-z0-9]$")
UNITS = ("_seconds", "_bytes", "_records", "_messages", "_entries")
# Label names whose values come from a closed set (see exporter.metrics).
BOUNDED_LABELS = {
    "method", "route", "status", "topic", "group", "partition", "format", "medium", "outcome",
    # FastStream's: its app name, the broker's kind, the handler's or destination's topic,
    # the exception's class name.
    "app_name", "broker", "handler", "destination", "exception_type",
}  # fmt: skip


def families() -> list[Any]:
    consumer_metrics()  # FastStream's families join the registry once a broker is made
    return list(metrics.REGISTRY.collect())


def test_every_family_is_named_by_the_conventions() -> None:
    found = families()
    assert len(found) >= 20
    for family in found:
        assert NAME.match(family.name), family.name
        if family.type == "histogram":
            assert family.name.endswith(UNITS), f"{family.name}: a histogram names its unit"
        assert not family.name.endswith("_total") or family.type == "counter", family.name


def test_counters_are_exposed_with_total() -> None:
    metrics.DEAD_LETTERED.labels(metrics.topic_label("things")).inc(0)
    text = generate_latest(metrics.REGISTRY).decode()
    for family in families():
        if family.type == "counter" and family.samples:
            assert f"\n{family.name}_total" in text, family.name


def test_no_label_takes_an_unbounded_value() -> None:
    for family in families():
        labels = {name for s in family.samples for name in s.labels} - {"le"}
        declared = set(getattr(family, "_labelnames", ()))
        assert labels | declared <= BOUNDED_LABELS, (family.name, labels - BOUNDED_LABELS)


def test_label_values_from_outside_fall_into_other() -> None:
    assert metrics.topic_label("things") == "things"
    assert metrics.topic_label("things.dlq") == "things.dlq"
    assert metrics.topic_label("tenant-42-chose-this") == metrics.OTHER
    assert metrics.topic_label(None) == metrics.OTHER
    assert metrics.method_label("GET") == "GET"
    assert metrics.method_label("BREW") == metrics.OTHER


async def test_http_routes_are_templates_and_unknown_paths_one_series() -> None:
    app = FastAPI()

    @app.get("/probe-items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    wrapped = HttpMetrics(app)
    before = generate_latest(metrics.REGISTRY).decode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as client:
        for n in range(3):
            assert (await client.get(f"/probe-items/secret-{n}")).status_code == 200
            assert (await client.get(f"/scanner/{n}")).status_code == 404
        assert (await client.request("BREW", "/probe-items/x")).status_code == 405
    after = generate_latest(metrics.REGISTRY).decode()
    name = "exporter_http_requests_total"
    templated = {"route": "/probe-items/{item_id}", "status": "200"}
    assert sample(after, name, **templated) - sample(before, name, **templated) == 3
    unmatched = {"route": metrics.UNMATCHED, "status": "404"}
    assert sample(after, name, **unmatched) - sample(before, name, **unmatched) == 3
    assert sample(after, name, method=metrics.OTHER) - sample(before, name, method=metrics.OTHER) == 1
    assert "secret-" not in after
    assert "/scanner/" not in after


@pytest.mark.parametrize(
    "worst",
    [
        {"port": 0},
        {"port": 65_536},
        {"host": ""},
        {"host": "h" * 254},
        {"token": "short"},
        {"token": "t" * 257},
        {"refresh_seconds": 0.5},
        {"refresh_seconds": 3601},
        {"query_timeout_seconds": 0},
        {"query_timeout_seconds": 61},
    ],
)
def test_settings_refuse_their_worst_values(worst: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MetricsSettings.model_validate(worst)


def test_settings_default_to_no_public_exposure() -> None:
    defaults = MetricsSettings()
    assert defaults.host == "127.0.0.1"
    assert defaults.port is None
    assert defaults.token is None


async def test_a_taken_metrics_port_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """The request-api's workers share their settings: the second one to bind must still start."""
    [port] = free_ports(1)
    settings = MetricsSettings(port=port)
    first = await listen(settings)
    assert first is not None
    try:
        assert await listen(settings) is None
        assert "not served here" in caplog.text
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            answer = await client.get("/metrics")
            assert answer.status_code == 200
            assert "exporter_http_requests" in answer.text
            assert (await client.get("/other")).status_code == 404
    finally:
        await first.close()
