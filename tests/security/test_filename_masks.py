"""Issue 14, finding 1: rendering a file name is bounded. No mask and no upstream value makes a
long name or a long piece of one: hostile formats are refused before anything is formatted, and
every piece and every name is cut to size, through the real renderer too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.contracts.filename_masks import MAX_FILENAME_LENGTH
from exporter.contracts.ingest import Thing
from exporter.contracts.job import JobSpec
from exporter.domain.job_life import JobStatus
from exporter.rendering.names import MAX_STEM_LENGTH, FileNamer, MaskError, naming_context, render_mask
from exporter.runtime import Runtime
from tests.integration.renderer_support import body, job_spec, measurement, ms, render, store
from tests.request_cases import SEED_000

TENANT = "acme"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LONG = "x" * 200  # the longest serial number or name the ingestor takes
HOSTILE_MASKS = [
    "${item.index:1000000}",
    "${item.index:>1000000}",
    "${item.index:,}",
    "${thing.serialNumber:>1000000}",
    "${thing.serialNumber:.1000000}",
    "${job.scheduledAt:%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y%Y}",
    "${job.scheduledAt:%c}",
    "${window.from:%%}",
    "${thing.bogus}",
]


def long_thing() -> Thing:
    return Thing.model_validate(
        {
            "id": "t-long",
            "version": 1,
            "serialNumber": LONG,
            "name": LONG,
            "thingDefinition": {"id": LONG, "name": LONG},
            "customerId": LONG,
            "locationId": LONG,
            "metrics": [{"name": "weight", "unit": "kg"}],
        }
    )


def things_job(mask: str) -> JobSpec:
    item = {"things": {"thingId": "t-long", "from": ms(START), "to": ms(START) + 60_000}}
    return job_spec(TENANT, body("csv", [item], filenameMask=mask))


def series_job() -> JobSpec:
    return job_spec(TENANT, SEED_000, START)


@pytest.mark.parametrize("mask", HOSTILE_MASKS)
def test_a_hostile_mask_is_refused_before_anything_is_formatted(mask: str) -> None:
    with pytest.raises(MaskError):
        render_mask(mask, naming_context(series_job(), 0))


def test_long_upstream_values_never_make_a_long_piece_or_name() -> None:
    context = naming_context(series_job(), 0, long_thing())
    mask = "${thing.serialNumber}${thing.name}${thing.customerId}${thing.locationId}${thingDefinition.name}"
    rendered = render_mask(mask, context)
    assert rendered == "x" * MAX_STEM_LENGTH
    cut = render_mask("${thing.name:.5}-${thingDefinition.id}", context)
    assert cut == "xxxxx-" + "x" * (MAX_STEM_LENGTH - 6)
    namer = FileNamer("jsonl.zst", hash_names=False)
    names = [namer.name(mask, context, "fallback") for _ in range(3)]
    assert len(set(names)) == 3
    assert all(len(name) <= MAX_FILENAME_LENGTH for name in names)
    assert all(len(namer.part(name, 1000)) <= MAX_FILENAME_LENGTH for name in names)


async def test_the_renderer_names_a_long_things_file_within_the_bound(runtime: Runtime) -> None:
    await runtime.things.upsert_many([(TENANT, long_thing())])
    await store(runtime, [measurement(TENANT, "weight", START, 1.0, "kg", "t-long")])
    mask = "${thing.serialNumber}_${thing.name}_${thingDefinition.name}_${item.index:012d}"

    outcome = await render(runtime, things_job(mask))

    assert outcome.result.status is JobStatus.DONE, outcome.result.error
    assert list(outcome.objects) == ["x" * MAX_STEM_LENGTH + ".csv"]
