"""The requested table: chosen columns, in order, renamed to their labels, times in the target zone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import polars as pl

from exporter.contracts.request import Format, TimestampFormat

if TYPE_CHECKING:
    from exporter.rendering.writers import TableWriter

ISO_WITH_OFFSET = "%Y-%m-%dT%H:%M:%S%.3f%:z"
TIME_COLUMNS = ("time", "created")
VALUE_COLUMN = "value"
# Spreadsheet programs run a cell that starts with `=`, `+`, `-`, `@`, tab or CR as a formula.
FORMULA_START = "^[=+\\-@\t\r]"
UTC_TIMES = pl.Datetime("us", "UTC")


def metric_column(metric: str) -> str:
    """A metric's column in a thing's wide frame: never a stored field's name, whatever the metric's."""
    return f"{VALUE_COLUMN}:{metric}"


def neutralise_formulas(expression: pl.Expr) -> pl.Expr:
    """Prefixes a quote to text that a spreadsheet would evaluate (CSV/formula injection)."""
    return (
        pl.when(expression.str.contains(FORMULA_START)).then(pl.lit("'") + expression).otherwise(expression)
    )


def neutralised_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """Header cells quoted as values are: labels, metric names and units are someone's text too."""
    frame = pl.DataFrame({"label": list(labels)}, schema={"label": pl.String})
    return tuple(frame.select(neutralise_formulas(pl.col("label")).alias("label"))["label"])


def longest_text(column: pl.Series) -> int:
    """The most characters a value of ``column`` takes as text: for column widths."""
    longest = column.cast(pl.String).str.len_chars().max()
    return int(longest) if isinstance(longest, int) else 0


def series_unit(frame: pl.DataFrame) -> str | None:
    """The unit of a series, for its header (``Weight [kg]``): the first one the frame names."""
    if "unit" not in frame.columns:
        return None
    units = frame["unit"].drop_nulls()
    return str(units[0]) if len(units) else None


class Labelled(Protocol):
    """A column of the table: what the frame calls it, what the file calls it."""

    @property
    def id(self) -> str: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class TableColumn:
    id: str
    label: str


@dataclass(frozen=True)
class Layout:
    """How stored measurements become the requested table for one kind of file."""

    columns: tuple[Labelled, ...]
    timezone: str = "UTC"
    timestamps: TimestampFormat = "ISO_8601"
    # Appended to the value column's label: `Weight [kg]`.
    unit: str | None = None
    # Spreadsheets keep times as datetimes (in the target zone) instead of text.
    native_times: bool = False
    # Text files quote what a spreadsheet opening them would run as a formula.
    neutralise: bool = True

    @classmethod
    def of(cls, fmt: Format, writer: type[TableWriter], unit: str | None = None) -> Layout:
        """The layout a request's format asks for, as the given writer needs it."""
        return cls(
            columns=tuple(fmt.columns),
            timezone=fmt.timezone,
            timestamps=fmt.timestamp_format,
            unit=unit if fmt.include_unit else None,
            native_times=writer.native_times,
            neutralise=writer.neutralises_formulas,
        )

    @classmethod
    def wide(
        cls, fmt: Format, writer: type[TableWriter], metrics: Sequence[tuple[str, str | None]]
    ) -> Layout:
        """A thing file's table (seed 001): the time, then a column per (metric, unit), labelled by
        the metric and, with ``includeUnit``, its unit: ``Weight [kg]``. The time keeps the label
        the request gives it."""
        time_label = next((column.label for column in fmt.columns if column.id == "time"), "time")
        columns = [
            TableColumn(metric_column(metric), f"{metric} [{unit}]" if fmt.include_unit and unit else metric)
            for metric, unit in metrics
        ]
        return cls(
            columns=(TableColumn("time", time_label), *columns),
            timezone=fmt.timezone,
            timestamps=fmt.timestamp_format,
            native_times=writer.native_times,
            neutralise=writer.neutralises_formulas,
        )

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._label(column) for column in self.columns)

    def _label(self, column: Labelled) -> str:
        if column.id == VALUE_COLUMN and self.unit:
            return f"{column.label} [{self.unit}]"
        return column.label

    def shape(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Only the requested columns, in the requested order, labelled."""
        return frame.select(
            self._expression(column.id, frame.schema[column.id]).alias(self._label(column))
            for column in self.columns
        )

    def _expression(self, column_id: str, dtype: pl.DataType) -> pl.Expr:
        expression = pl.col(column_id)
        if column_id in TIME_COLUMNS:
            # MongoDB hands back naive UTC; a cast makes every time an explicit UTC instant.
            instant = expression.cast(UTC_TIMES)
            if self.timestamps == "EPOCH_MILLIS":
                return instant.dt.epoch("ms")
            local = instant.dt.convert_time_zone(self.timezone)
            return local if self.native_times else local.dt.to_string(ISO_WITH_OFFSET)
        if self.neutralise and dtype == pl.String:
            return neutralise_formulas(expression)
        return expression
