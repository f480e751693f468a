"""The deployment's Prometheus and Grafana files agree with the code: every metric the dashboard
queries exists, every service is scraped where it listens, the dashboard's data source is the
provisioned one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from exporter import metrics
from exporter.adapters.kafka import consumer_metrics

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "exporter-dashboard.json"
METRIC = re.compile(r"\bexporter_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exposed_names() -> set[str]:
    """Every sample name the services expose: each family with its type's suffixes."""
    consumer_metrics()
    return {
        family.name + suffix
        for family in metrics.REGISTRY.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def dashboard_queries() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    queries = dashboard_queries()
    named = {name for query in queries for name in METRIC.findall(query)}
    assert len(named) >= 10
    assert named - exposed_names() == set()


def test_a_misspelt_metric_would_be_caught() -> None:
    assert "exporter_render_row_total" not in exposed_names()
    assert "exporter_jobs_finished" not in exposed_names()  # a counter is queried with _total


def test_the_dashboard_covers_what_the_issue_asks() -> None:
    queries = " ".join(dashboard_queries())
    for wanted in (
        "exporter_received_messages_total",  # throughput
        "exporter_consumer_lag_messages",  # lag
        "exporter_jobs_finished_total",  # job outcomes
        "exporter_deliveries_total",  # delivery outcomes
        "exporter_scheduler_fire_lag_seconds_bucket",  # fire lag
    ):
        assert wanted in queries


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    provisioned = yaml.safe_load((DEPLOY / "grafana" / "datasources.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert used <= uids


def test_prometheus_scrapes_every_service_where_it_listens() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "exporter"]
    [discovery] = job["dns_sd_configs"]
    exporter_services = {
        name
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("exporter:")
    }
    assert set(discovery["names"]) == exporter_services
    ports = {
        str(service["environment"]["EXPORTER_METRICS__PORT"])
        for name, service in compose["services"].items()
        if name in exporter_services
    }
    assert ports == {str(discovery["port"])}
