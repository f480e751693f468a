"""The timeouts, the lost-job settings and the producer's acknowledgements: bounded, and built
into the clients as set."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from exporter.adapters.kafka import make_broker
from exporter.adapters.mongo.client import client_options
from exporter.adapters.storage import http_client
from exporter.settings import KafkaSettings, MongoSettings, SchedulerSettings, Settings, StorageSettings

# Each new setting, and a value past its bound at either end.
WORST = [
    (MongoSettings, "connect_timeout_seconds", 301),
    (MongoSettings, "connect_timeout_seconds", 0),
    (MongoSettings, "operation_timeout_seconds", 3601),
    (MongoSettings, "operation_timeout_seconds", 0),
    (StorageSettings, "connect_timeout_seconds", 301),
    (StorageSettings, "read_timeout_seconds", 3601),
    (StorageSettings, "read_timeout_seconds", 0),
    (StorageSettings, "retries", 11),
    (StorageSettings, "retries", -1),
    (SchedulerSettings, "lost_job_seconds", 7 * 24 * 3600 + 1),
    (SchedulerSettings, "lost_job_seconds", 0.5),
    (SchedulerSettings, "max_job_announcements", 101),
    (SchedulerSettings, "max_job_announcements", 0),
    (SchedulerSettings, "expiry_interval_seconds", 24 * 3600 + 1),
    (KafkaSettings, "acks", -1),
]


@pytest.mark.parametrize(("model", "name", "value"), WORST, ids=lambda v: str(v))
def test_a_setting_past_its_bound_is_refused(model: type[BaseModel], name: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=name):
        model.model_validate({name: value})


def test_every_mongo_client_waits_at_most_the_settings() -> None:
    options = client_options(MongoSettings(connect_timeout_seconds=2.5, operation_timeout_seconds=30))
    assert options["connectTimeoutMS"] == options["serverSelectionTimeoutMS"] == 2500
    assert options["socketTimeoutMS"] == 30_000


def test_the_object_store_client_waits_and_retries_at_most_the_settings() -> None:
    pool = http_client(StorageSettings(connect_timeout_seconds=3, read_timeout_seconds=7, retries=1))
    timeout, retries = pool.connection_pool_kw["timeout"], pool.connection_pool_kw["retries"]
    assert (timeout.connect_timeout, timeout.read_timeout) == (3, 7)
    assert retries.total == 1


def producer_arguments(settings: Settings) -> dict[str, Any]:
    """What FastStream builds the services' aiokafka producer with."""
    arguments: dict[str, Any] = make_broker(settings)._connection_kwargs
    return {name: arguments[name] for name in ("acks", "enable_idempotence")}


PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "kafka": {"signing_secret": "s" * 40},
    "storage": {"secret_key": "k" * 40},
    "api": {"auth_mode": "jwt", "jwt_secret": "j" * 40},
}


def test_the_embedded_broker_gets_acks_all_without_the_idempotent_producer_it_lacks() -> None:
    assert producer_arguments(Settings()) == {"acks": "all", "enable_idempotence": False}


def test_production_uses_the_idempotent_producer_unless_told_not_to() -> None:
    assert producer_arguments(Settings.model_validate(PRODUCTION)) == {
        "acks": "all",
        "enable_idempotence": True,
    }
    without = {**PRODUCTION, "kafka": {**PRODUCTION["kafka"], "enable_idempotence": False}}
    assert producer_arguments(Settings.model_validate(without))["enable_idempotence"] is False


def test_the_idempotent_producer_without_acks_all_is_refused() -> None:
    with pytest.raises(ValidationError, match="requires acks 'all'"):
        KafkaSettings(enable_idempotence=True, acks=1)
