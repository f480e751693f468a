"""The console's export form: a request survives the trip through its fields, the API's own
messages land on the field they concern, and the next runs are the scheduler's."""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.contracts.request import EXAMPLE_REQUEST, ExportRequestSpec
from exporter.domain.schedule import first_run_at, upcoming_runs
from request_api.console import forms

WINDOWED: dict[str, object] = {
    "name": "Dated",
    "type": "oneTime",
    "format": {
        "extension": "xlsx",
        "timezone": "Europe/Rome",
        "columns": [{"id": "value", "label": "Reading"}, {"id": "time", "label": "When"}],
        "includeUnit": True,
        "compression": "gzip",
    },
    "items": [
        {
            "params": {
                "target": {"value": "urn:cpt:smartdevice:nid:D1:temperature"},
                "channelId": "plant-1",
                "from": 1767222000000,  # 2026-01-01T00:00 in Rome
                "to": 1767225600000,
                "decimation": {"ds": "15m", "dsf": "max"},
            }
        }
    ],
    "notification": {
        "messages": [
            {"medium": "email", "policy": "onFailure", "recipients": ["a@example.com", "b@example.com"]}
        ]
    },
}


def submitted(form: forms.ExportForm) -> tuple[ExportRequestSpec | None, forms.Problems]:
    return forms.validated(form.values, forms.field_names(form))


def test_a_request_shown_in_the_form_and_sent_back_is_the_same_request() -> None:
    for wire in (EXAMPLE_REQUEST, WINDOWED):
        original = ExportRequestSpec.model_validate(wire)
        form = forms.form_of(original.to_wire())
        assert form.values.get("items.0.params.from") in ("", "2026-01-01T00:00")
        spec, problems = submitted(form)
        assert problems == {}
        assert spec == original


def test_what_the_form_has_no_field_for_is_kept_as_it_was() -> None:
    wire = {**WINDOWED, "format": {**WINDOWED["format"], "archive": True, "filenameMask": "${item.index}"}}  # type: ignore[dict-item]
    form = forms.form_of(ExportRequestSpec.model_validate(wire).to_wire())
    assert form.kept() == {"format.archive": "on", "format.filenameMask": "${item.index}"}
    spec, _ = submitted(form)
    assert spec == ExportRequestSpec.model_validate(wire)


def test_the_blank_form_asks_only_for_a_target() -> None:
    spec, problems = submitted(forms.blank_form())
    assert spec is None
    assert problems == {"items.0.params.target.value": ["Field required"]}


def test_each_message_is_the_apis_on_its_own_field() -> None:
    form = forms.form_of(ExportRequestSpec.model_validate(WINDOWED).to_wire())
    form.values |= {"format.timezone": "Mars/Olympus", "notification.messages.0.recipients": "nobody"}
    form.values |= {"format.columns.1.label": "Reading", "items.0.params.to": "yesterday"}
    _, problems = submitted(form)
    assert problems == {
        "items.0.params.to": ["must be a date and time such as 2026-01-31T00:00"],
        "format.timezone": ["'Mars/Olympus' is not an IANA timezone name such as Europe/Rome"],
        "format.columns": ["column labels must be unique"],
        "notification.messages.0.recipients": [
            "entry 0: 'nobody' is not an email address such as ops@example.com"
        ],
    }


def test_a_rule_of_the_whole_request_is_shown_for_the_whole_request() -> None:
    form = forms.blank_form()
    form.values |= {"periodicity": "", "items.0.params.target.value": "urn:cpt:x:D1:t"}
    _, problems = submitted(form)
    assert problems == {"": ["request: 'periodicity' is required when type is 'recurring'"]}


def test_fields_beyond_any_form_are_refused_by_the_request_not_ignored() -> None:
    form = forms.blank_form()
    form.values |= {"items.0.params.target.value": "urn:cpt:x:D1:t", "items.0.params.secret": "x"}
    form.values["items.123.params.target.value"] = "urn:cpt:x:D1:t"
    spec, problems = submitted(form)
    assert spec is None
    assert problems == {"": ["items: Input should be a valid list"]}
    del form.values["items.123.params.target.value"]
    _, problems = submitted(form)
    assert problems == {"": ["items.0.params.secret: Extra inputs are not permitted"]}


def test_the_next_runs_are_the_schedulers() -> None:
    spec = ExportRequestSpec.model_validate(
        {**EXAMPLE_REQUEST, "periodicity": "P1M", "startAt": "2031-01-31T08:00:00Z"}
    )
    now = datetime(2030, 1, 1, tzinfo=UTC)
    runs = forms.next_runs(spec, now)
    stored = spec.stored(request_id="x", tenant="t", owner="o", version=1, created_at=now, updated_at=now)
    assert runs == upcoming_runs(stored, first_run_at(stored), 5)
    assert [run.day for run in runs] == [31, 28, 31, 30, 31]  # month ends kept, in Rome's calendar


def test_the_placeholders_listed_are_the_notifiers() -> None:
    assert {"${export.name}", "${job.status}", "${download.url}"} <= set(forms.placeholders())
