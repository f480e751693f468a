"""Each kind of item as files: a device's metric (seed 000), per-thing files (seed 001), an entity
type as JSON Lines (seed 003). Reads go through the stores; the tables are the rendering library's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime

import polars as pl

from exporter.adapters.mongo.entities import DOCUMENT
from exporter.contracts.base import utcnow
from exporter.contracts.filename_masks import THING_FILE_MASK
from exporter.contracts.job import Window
from exporter.contracts.request import Decimation, ItemKind
from exporter.rendering.decimation import decimated_frames, through
from exporter.rendering.names import naming_context
from exporter.rendering.output import FileFormat
from exporter.rendering.table import Layout, series_unit
from exporter.rendering.wide import Widener
from exporter.rendering.writers import DocumentLinesWriter
from exporter.runtime import Runtime
from renderer.output import JobOutput, peek

# Rows a decimated item is read in at least: decimating costs per frame far more than per row, and
# only its buckets go on, so its input comes in larger frames (a few MB each).
DECIMATED_READ_ROWS = 100_000


async def _metric_unit(runtime: Runtime, tenant: str, publisher: str, metric: str) -> str | None:
    """A series' unit from its thing's metadata: for the header of a file without rows."""
    thing = await runtime.things.get(tenant, publisher)
    units = {m.name: m.unit for m in thing.metrics} if thing else {}
    return units.get(metric) or None


def settle_delay(window: Window, now: datetime, settle_seconds: float) -> float:
    """Seconds to wait before reading ``window``.

    A reading is stamped with its arrival when its flush is stored, a moment before the store
    shows it: an arrival window that ended less than ``settle_seconds`` ago may still gain
    readings stamped inside it. A window by measured time never waits (late readings of it are
    not wanted; the next arrival window takes them).
    """
    if window.by != "arrival" or window.to is None:
        return 0.0
    return max(0.0, (window.to - now).total_seconds() + settle_seconds)


async def measurement_frames(
    runtime: Runtime,
    tenant: str,
    publisher: str,
    names: str | Sequence[str],
    window: Window,
    channel: str | None = None,
    subtopic: str | None = None,
    decimation: Decimation | None = None,
    timezone: str = "UTC",
) -> AsyncIterator[pl.DataFrame]:
    """The window's readings of a publisher's series, decimated if asked, once the window has
    settled."""
    settings = runtime.settings.renderer
    await asyncio.sleep(settle_delay(window, utcnow(), settings.arrival_settle_seconds))
    batch_size = settings.read_batch_size
    if decimation is not None:
        batch_size = max(batch_size, DECIMATED_READ_ROWS)
    frames = runtime.measurements.frames(
        tenant, publisher, names, window.from_, window.to, batch_size, channel, subtopic, window.by
    )
    return frames if decimation is None else decimated_frames(frames, decimation, timezone)


async def write_series(runtime: Runtime, output: JobOutput, index: int, window: Window) -> None:
    spec = output.spec
    fmt = spec.request.format
    item = spec.request.items[index]
    params = item.params
    assert params is not None
    target = params.target
    frames = await measurement_frames(
        runtime,
        spec.tenant,
        target.publisher,
        target.metric,
        window,
        params.channel_id,
        params.subtopic,
        params.decimation,
        fmt.timezone,
    )
    first, frames = await peek(frames)
    if first is not None:
        unit = series_unit(first)
    else:
        unit = (
            await _metric_unit(runtime, spec.tenant, target.publisher, target.metric)
            if fmt.include_unit
            else None
        )
    layout = Layout.of(fmt, output.format.writer, unit)
    name = output.namer.name(
        item.filename or fmt.filename_mask, naming_context(spec, index), f"export-{index + 1}"
    )
    document = output.document(layout.labels, target.label or target.metric, window)
    await output.write(name, frames, document, layout.shape)


async def write_things(runtime: Runtime, output: JobOutput, index: int, window: Window) -> None:
    """One file per matching thing: its metrics side by side, a row per time."""
    spec = output.spec
    fmt = spec.request.format
    item = spec.request.items[index]
    selection = item.things
    assert selection is not None
    for thing in await runtime.things.find(spec.tenant, selection):
        units = {metric.name: metric.unit for metric in thing.metrics}
        metrics = selection.metrics or list(units)
        if not metrics:
            continue
        frames = await measurement_frames(
            runtime, spec.tenant, thing.id, metrics, window, None, None, selection.decimation, fmt.timezone
        )
        layout = Layout.wide(
            fmt, output.format.writer, [(metric, units.get(metric) or None) for metric in metrics]
        )
        context = naming_context(spec, index, thing)
        mask = item.filename or fmt.filename_mask or THING_FILE_MASK
        name = output.namer.name(mask, context, thing.id)
        document = output.document(layout.labels, thing.name or thing.serial_number or thing.id, window)
        await output.write(name, through(frames, Widener(metrics)), document, layout.shape)


def _as_is(frame: pl.DataFrame) -> pl.DataFrame:
    return frame


async def write_entities(runtime: Runtime, output: JobOutput, index: int, window: Window) -> None:
    """Every entity of the type, one stored document per line, split by the settings (seed 003)."""
    spec = output.spec
    fmt = spec.request.format
    item = spec.request.items[index]
    assert item.entities is not None
    entity_type = item.entities.entity_type
    frames = runtime.entities.documents(spec.tenant, entity_type, runtime.settings.renderer.read_batch_size)
    name = output.namer.name(item.filename or fmt.filename_mask, naming_context(spec, index), entity_type)
    document = output.document((DOCUMENT,), entity_type, window)
    await output.write(name, frames, document, _as_is, FileFormat(DocumentLinesWriter, fmt.compression))


ItemWriter = Callable[[Runtime, JobOutput, int, Window], Awaitable[None]]
ITEM_WRITERS: dict[ItemKind, ItemWriter] = {
    "params": write_series,
    "things": write_things,
    "entities": write_entities,
}
