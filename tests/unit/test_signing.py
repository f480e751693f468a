"""The producer-signature rule (exporter.signing): who may publish what, for whom."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from exporter.signing import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TENANT_HEADER,
    Headers,
    Producer,
    Refused,
    Verifier,
    signature,
)

OWN = Producer("exporter", b"own-secret-0123456789")
IAM = Producer("iam", b"iam-secret-0123456789", frozenset({"iam.policy-updated"}), frozenset({"*"}))
ACME = Producer(
    "acme", b"acme-secret-0123456789", frozenset({"export.requested", "things"}), frozenset({"acme"})
)
SIGNED = ["export.requested", "export.completed", "iam.policy-updated", "things"]
VERIFIER = Verifier([OWN, IAM, ACME], SIGNED)


def envelope(tenant: str = "acme") -> bytes:
    return json.dumps({"id": "e1", "tenant": tenant, "data": {"tenant": tenant}}).encode()


def refusal(topic: str, value: bytes, headers: Headers) -> str:
    with pytest.raises(Refused) as refused:
        VERIFIER.check(topic, value, headers)
    return str(refused.value)


def test_the_signature_is_hmac_sha256_hex_over_the_topic_a_nul_and_the_value() -> None:
    expected = hmac.new(b"k", b"export.requested\0" + b"{}", hashlib.sha256).hexdigest()
    assert signature(b"k", "export.requested", b"{}") == expected
    signed = {KEY_ID_HEADER: "exporter", SIGNATURE_HEADER: signature(OWN.secret, "t", b"v")}
    assert OWN.headers("t", b"v") == signed


@pytest.mark.parametrize("topic", SIGNED)
def test_the_services_own_key_publishes_anything_for_any_tenant(topic: str) -> None:
    value = envelope("globex")
    VERIFIER.check(topic, value, OWN.raw_headers(topic, value))


def test_an_upstream_producer_publishes_on_its_topics_for_its_tenants() -> None:
    value = envelope("acme")
    VERIFIER.check("export.requested", value, ACME.raw_headers("export.requested", value))
    VERIFIER.check("iam.policy-updated", value, IAM.raw_headers("iam.policy-updated", value))


def test_topics_not_listed_as_signed_take_anything() -> None:
    VERIFIER.check("messages", b"not even json", [])


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "unsigned"),
        ([(KEY_ID_HEADER, b"acme")], "unsigned"),
        ([(SIGNATURE_HEADER, b"00")], "unsigned"),
        ([(KEY_ID_HEADER, b"mallory"), (SIGNATURE_HEADER, b"00")], "unknown key id 'mallory'"),
        ([(KEY_ID_HEADER, b"acme"), (SIGNATURE_HEADER, b"00")], "bad signature for key 'acme'"),
    ],
)
def test_unsigned_unknown_and_forged_records_are_refused(headers: Headers, reason: str) -> None:
    assert reason in refusal("export.requested", envelope(), headers)


def test_a_tampered_value_is_refused() -> None:
    value = envelope()
    headers = ACME.raw_headers("export.requested", value)
    assert "bad signature" in refusal("export.requested", value.replace(b"e1", b"e2"), headers)


def test_a_record_replayed_onto_another_topic_is_refused() -> None:
    value = envelope()
    assert "bad signature" in refusal("export.requested", value, OWN.raw_headers("export.completed", value))


def test_a_producer_is_refused_on_a_topic_it_may_not_publish_to() -> None:
    value = envelope()
    reason = refusal("export.completed", value, ACME.raw_headers("export.completed", value))
    assert reason == "topic not allowed: key 'acme' may not publish to 'export.completed'"


def test_a_producer_is_refused_for_a_tenant_it_may_not_act_for() -> None:
    value = envelope("globex")
    reason = refusal("export.requested", value, ACME.raw_headers("export.requested", value))
    assert reason == "tenant not allowed: key 'acme' may not act for 'globex'"


def test_every_tenant_a_record_names_must_be_allowed_the_envelope_and_the_tenant_header() -> None:
    value = envelope("acme")
    headers = [*ACME.raw_headers("things", value), (TENANT_HEADER, b"globex")]
    assert "may not act for 'globex'" in refusal("things", value, headers)
    bare = json.dumps({"thingId": "x"}).encode()
    VERIFIER.check("things", bare, [*ACME.raw_headers("things", bare), (TENANT_HEADER, b"acme")])


def test_a_producer_limited_to_some_tenants_must_name_one() -> None:
    bare = b"[1, 2]"
    assert "must name the tenant" in refusal("things", bare, ACME.raw_headers("things", bare))


def test_a_repeated_signature_header_is_refused() -> None:
    value = envelope()
    headers = [*ACME.raw_headers("export.requested", value), (SIGNATURE_HEADER, b"00")]
    assert "repeated" in refusal("export.requested", value, headers)


def test_reasons_never_show_a_secret_or_a_signature() -> None:
    value = envelope()
    good = ACME.raw_headers("export.requested", value)
    foreign = envelope("globex")
    reasons = [
        refusal("export.requested", value + b" ", good),
        refusal("export.completed", value, ACME.raw_headers("export.completed", value)),
        refusal("export.requested", foreign, ACME.raw_headers("export.requested", foreign)),
    ]
    for reason in reasons:
        assert ACME.secret.decode() not in reason
        assert all(header.decode() not in reason for name, header in good if name == SIGNATURE_HEADER)
    assert "acme-secret" not in repr(ACME)
