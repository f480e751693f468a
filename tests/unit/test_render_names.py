"""File names: masks with placeholders, MD5-hashed names (seed 001), safe and unique within a job."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from exporter.contracts.filename_masks import (
    FILENAME_MASK_ROOTS,
    MASK_PLACEHOLDERS,
    MAX_FILENAME_LENGTH,
    PlaceholderKind,
)
from exporter.contracts.ingest import Thing
from exporter.contracts.job import JobSpec, Window
from exporter.contracts.request import ExportRequestSpec
from exporter.rendering.names import FileNamer, MaskError, naming_context, object_key, render_mask, safe_stem
from tests.request_cases import SEED_000

CONTEXT = {
    "thing": {"serialNumber": "SN-0042", "id": "D0CF"},
    "thingDefinition": {"name": "Scale"},
    "export": {"name": "Weights"},
    "job": {"scheduledAt": datetime(2026, 4, 1, 0, 30, tzinfo=UTC)},
    "item": {"index": 7},
}


def test_placeholders_are_filled_with_formats() -> None:
    mask = "${thing.serialNumber}_${thingDefinition.name}-${job.scheduledAt:%Y%m%d}-${item.index:03d}"
    assert render_mask(mask, CONTEXT) == "SN-0042_Scale-20260401-007"
    assert render_mask("${job.scheduledAt}", CONTEXT) == "20260401T003000"
    assert render_mask("plain name", CONTEXT) == "plain name"


@dataclass
class Job:
    scheduled_at: datetime


@dataclass
class Context:
    job: Job
    export: dict[str, str]


def test_dataclasses_and_snake_case_attributes_are_a_context_too() -> None:
    context = Context(job=Job(datetime(2026, 1, 2, tzinfo=UTC)), export={"name": "E"})
    assert render_mask("${export.name}-${job.scheduledAt:%d.%m}", context) == "E-02.01"


def test_an_unknown_placeholder_is_a_clear_error_listing_the_known_ones() -> None:
    with pytest.raises(MaskError) as caught:
        render_mask("${thing.serial}", CONTEXT)
    message = str(caught.value)
    assert message.startswith("file name mask '${thing.serial}' '${thing.serial}' is not a placeholder of")
    assert "thing.serialNumber" in message
    with pytest.raises(MaskError, match="unknown object"):
        render_mask("${device.id}", CONTEXT)
    with pytest.raises(MaskError, match="closing"):
        render_mask("${thing.id", CONTEXT)
    with pytest.raises(MaskError, match="truncation"):
        render_mask("${thing.id:%Y}", CONTEXT)
    with pytest.raises(MaskError, match=r"has no '\$\{job\.scheduledAt\}'"):
        render_mask("${job.scheduledAt}", {"job": {}})


def test_formats_are_whitelisted_per_kind() -> None:
    """Zero-padding for numbers, truncation for text, a strftime subset for times; nothing else."""
    context = {**CONTEXT, "thing": {"serialNumber": "SN-0042", "id": "D0CF"}}
    assert render_mask("${item.index:012d}|${item.index:3}|${item.index:d}", context) == "000000000007|  7|7"
    assert render_mask("${thing.serialNumber:.2}${thing.id:.0}", context) == "SN"
    stamp = "${job.scheduledAt:%Y-%m-%d_%H.%M.%S %j %y %b T}"
    assert render_mask(stamp, context) == "2026-04-01_00.30.00 091 26 Apr T"
    for refused in ("${item.index:013d}", "${item.index:x}", "${item.index:+d}", "${item.index:.3}"):
        with pytest.raises(MaskError, match="zero-padding"):
            render_mask(refused, context)
    for refused in ("${thing.id:5}", "${thing.id:.89}", "${thing.id:<3}"):
        with pytest.raises(MaskError, match="truncation"):
            render_mask(refused, context)
    for refused in ("${job.scheduledAt:%s}", "${job.scheduledAt:%-d}", "${job.scheduledAt:a,b}"):
        with pytest.raises(MaskError, match="%Y"):
            render_mask(refused, context)


def test_names_from_data_are_made_safe() -> None:
    assert safe_stem("../../etc/passwd") == "_.._etc_passwd"
    assert safe_stem("a\x00b\nc\u202ed") == "a_b_c_d"
    assert safe_stem('Q1: "best" <plant>?') == "Q1_ _best_ _plant__"
    assert safe_stem(" ..hidden. ") == "hidden"
    assert len(safe_stem("x" * 500)) == MAX_FILENAME_LENGTH - 32


def test_the_namer_renders_hashes_and_keeps_names_unique_ignoring_case() -> None:
    namer = FileNamer("csv.gz")
    mask = "${thing.serialNumber}"
    assert namer.name(mask, CONTEXT, "export-1") == "SN-0042.csv.gz"
    assert namer.name("sn-0042", CONTEXT, "export-2") == "sn-0042-2.csv.gz"
    assert namer.name(None, CONTEXT, "export-3") == "export-3.csv.gz"
    assert namer.name("${thing.id:.0}", CONTEXT, "export-4") == "export-4.csv.gz"  # rendered to nothing
    many = [namer.name("same", CONTEXT, "x") for _ in range(4)]
    assert many == ["same.csv.gz", "same-2.csv.gz", "same-3.csv.gz", "same-4.csv.gz"]
    assert namer.name("same-5", CONTEXT, "x") == "same-5.csv.gz"
    assert namer.name("Same", CONTEXT, "x") == "Same-6.csv.gz"
    assert namer.name("../${thing.serialNumber}", CONTEXT, "x") == "_SN-0042.csv.gz"


def test_hashed_names_are_the_md5_of_the_rendered_name() -> None:
    namer = FileNamer("xlsx", hash_names=True)
    digest = hashlib.md5(b"SN-0042_Scale").hexdigest()
    assert (
        namer.name("${thing.serialNumber}_${thingDefinition.name}", CONTEXT, "export-1") == f"{digest}.xlsx"
    )
    assert (
        namer.name("${thing.serialNumber}_${thingDefinition.name}", CONTEXT, "export-2") == f"{digest}-2.xlsx"
    )


def test_parts_are_numbered_and_unique() -> None:
    namer = FileNamer("jsonl")
    name = namer.name("report", CONTEXT, "export-1")
    assert [namer.part(name, number) for number in (1, 2)] == [
        "report-part-001.jsonl",
        "report-part-002.jsonl",
    ]
    assert namer.name("report-part-001", CONTEXT, "export-2") == "report-part-001-2.jsonl"


def job(timezone: str, body: dict[str, object] | None = None) -> JobSpec:
    body = body or {**SEED_000, "name": "Weights", "format": {"extension": "csv", "timezone": timezone}}
    return JobSpec(
        job_id="r1-20260331T223000000Z",
        request_id="r1",
        request_version=1,
        tenant="acme",
        owner="alice",
        scheduled_at=datetime(2026, 3, 31, 22, 30, tzinfo=UTC),
        request=ExportRequestSpec.model_validate(body),
        windows=[Window(item=0, from_=datetime(2026, 3, 30, 22, tzinfo=UTC), to=None)],
    )


def test_a_jobs_context_has_every_root_a_mask_may_name_in_local_time() -> None:
    context = naming_context(job("Europe/Rome"), 0)
    assert sorted(context) == sorted(FILENAME_MASK_ROOTS)
    mask = (
        "${export.name}_${thing.serialNumber}_${thingDefinition.name}_${target.label}"
        "_${job.scheduledAt:%Y%m%d}_${window.from:%Y%m%d%H}_${window.to:%Y}_${item.index}"
    )
    assert render_mask(mask, context) == "Weights_D0CF5EFFFE26FDAB1_smartdevice_onoff_20260401_2026033100__1"
    assert render_mask("${job.scheduledAt:%Y%m%d}", naming_context(job("UTC"), 0)) == "20260331"
    known = naming_context(job("UTC"), 0, THING)
    assert render_mask("${thing.serialNumber}-${thingDefinition.name}", known) == "SN-1-Scale"
    assert render_mask("${thing.name}/${thing.customerId}/${thingDefinition.id}", known) == "Scale 1/c1/td-1"


THING = Thing.model_validate(
    {
        "id": "t-1",
        "version": 1,
        "serialNumber": "SN-1",
        "name": "Scale 1",
        "thingDefinition": {"id": "td-1", "name": "Scale"},
        "customerId": "c1",
        "locationId": "l1",
    }
)
KINDS: dict[PlaceholderKind, tuple[type, ...]] = {
    PlaceholderKind.NUMBER: (int,),
    PlaceholderKind.TEXT: (str,),
    PlaceholderKind.TIME: (datetime, type(None)),
}


def _leaves(node: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(node, dict):
        return {prefix.removesuffix("."): node}
    found: dict[str, object] = {}
    for name, child in node.items():
        found |= _leaves(child, f"{prefix}{name}.")
    return found


@pytest.mark.parametrize(
    ("item", "thing"),
    [
        ({"params": {"target": {"value": "urn:x:d:m"}}}, None),
        ({"things": {"thingId": "t-1"}}, THING),
        ({"things": {}}, Thing(id="bare", version=1)),
        ({"entities": {"entityType": "Order"}}, None),
    ],
)
def test_the_context_offers_exactly_the_declared_placeholders_of_their_kind(
    item: dict[str, object], thing: Thing | None
) -> None:
    """What a mask may name is checked at create against MASK_PLACEHOLDERS: every item's context
    must offer exactly those, each of its declared kind, or a valid mask would fail at render."""
    spec = job("UTC", {"type": "oneTime", "format": {"extension": "jsonl"}, "items": [item]})
    leaves = _leaves(naming_context(spec, 0, thing))
    assert sorted(leaves) == sorted(MASK_PLACEHOLDERS)
    for path, value in leaves.items():
        assert isinstance(value, KINDS[MASK_PLACEHOLDERS[path]]), path


def test_object_keys_are_deterministic() -> None:
    assert object_key("acme", "r1", "j1", "report.csv") == "acme/r1/j1/report.csv"
