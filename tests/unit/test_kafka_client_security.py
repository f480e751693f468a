"""From the Kafka security settings to the arguments every Kafka client is built with: the
embedded broker speaks neither SASL nor TLS, so the mapping is checked here."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import SecretStr, ValidationError

from exporter.adapters.kafka import client_options, make_broker
from exporter.settings import KafkaSettings, Settings
from tests.integration.notifier_support import self_signed


@pytest.fixture
def pem(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key, as files: a private CA, and a client certificate."""
    certificate = self_signed(tmp_path)
    return certificate.cert, certificate.key


def broker_arguments(kafka: KafkaSettings) -> dict[str, Any]:
    """What FastStream's broker hands each aiokafka consumer it builds."""
    broker = make_broker(Settings(kafka=kafka))
    builder = cast("functools.partial[Any]", broker.config.broker_config.builder)
    return builder.keywords


def test_plaintext_by_default() -> None:
    assert client_options(KafkaSettings()) == {"bootstrap_servers": "127.0.0.1:19092"}
    assert "sasl_mechanism" not in broker_arguments(KafkaSettings())


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_sasl_over_tls_reaches_the_broker_and_the_plain_clients(
    mechanism: str, pem: tuple[Path, Path]
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers="kafka:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        username="exporter",
        password=SecretStr("s3cret"),
        ca_file=pem[0],
    )
    for arguments in (client_options(kafka), broker_arguments(kafka)):
        assert arguments["security_protocol"] == "SASL_SSL"
        assert arguments["sasl_mechanism"] == mechanism
        assert (arguments["sasl_plain_username"], arguments["sasl_plain_password"]) == ("exporter", "s3cret")
        context: ssl.SSLContext = arguments["ssl_context"]
        assert context.verify_mode == ssl.CERT_REQUIRED
        [ca] = context.get_ca_certs()
        assert ca["subject"] == ((("commonName", "exporter test SMTP"),),)


def test_sasl_without_tls_has_no_tls_context() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", username="u", password=SecretStr("p"))
    options = client_options(kafka)
    assert (options["security_protocol"], options["ssl_context"]) == ("SASL_PLAINTEXT", None)


def test_mutual_tls_presents_the_client_certificate(pem: tuple[Path, Path]) -> None:
    cert_file, key_file = pem
    kafka = KafkaSettings(security_protocol="SSL", ca_file=cert_file, cert_file=cert_file, key_file=key_file)
    options = client_options(kafka)
    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    wrong = kafka.model_copy(update={"key_file": cert_file})  # a certificate is not its key
    with pytest.raises(ssl.SSLError):
        client_options(wrong)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL", "username": "u"}, "username and password are required"),
        ({"cert_file": "c.pem"}, "cert_file and key_file go together"),
        ({"signed_topics": ["export.requestd"]}, "unknown topics"),
        ({"producers": {"exporter": {"secret": "x" * 16, "topics": ["*"], "tenants": ["*"]}}}, "own"),
        ({"producers": {"Bad Id": {"secret": "x" * 16, "topics": ["*"], "tenants": ["*"]}}}, "pattern"),
        ({"signing_secret": "short"}, "signing_secret"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSettings.model_validate(fields)


def test_production_refuses_the_local_signing_secret() -> None:
    with pytest.raises(ValidationError, match=r"kafka\.signing_secret"):
        Settings(environment="production")
