"""Notification rules: policies and safe placeholders."""

from __future__ import annotations

import pytest

from exporter.contracts.job import JobStatus
from exporter.notifications.policy import policy_applies
from exporter.notifications.templates import render, unknown_placeholders


@pytest.mark.parametrize(
    ("policy", "status", "applies"),
    [
        ("onSuccess", JobStatus.DONE, True),
        ("onSuccess", JobStatus.FAILED, False),
        ("onFailure", JobStatus.FAILED, True),
        ("onFailure", JobStatus.DONE, False),
        ("always", JobStatus.DONE, True),
        ("always", JobStatus.FAILED, True),
        ("always", JobStatus.CANCELLED, False),
    ],
)
def test_policy(policy: str, status: JobStatus, applies: bool) -> None:
    assert policy_applies(policy, status) is applies  # type: ignore[arg-type]


def test_placeholders_are_filled_and_unknown_ones_stay_visible() -> None:
    values = {"export.name": "Temps", "download.url": "http://s3/x?sig=1"}
    text = "Your ${export.name} at ${download.url}; ${nope.field}, $export.name, {__import__}"
    assert render(text, values) == "Your Temps at http://s3/x?sig=1; ${nope.field}, Temps, {__import__}"
    assert unknown_placeholders(text, values) == ["nope.field"]
