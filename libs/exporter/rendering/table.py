"""The requested table: chosen columns, in order, renamed to their labels, times in the target zone."""

from __future__ import annotations

import polars as pl

from exporter.contracts.request import Column

ISO_WITH_OFFSET = "%Y-%m-%dT%H:%M:%S%.3f%:z"
TIME_COLUMNS = ("time", "created")
# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(expression: pl.Expr) -> pl.Expr:
    """Prefixes a quote to text that a spreadsheet would evaluate (CSV/formula injection)."""
    starts = pl.lit(False)
    for prefix in FORMULA_PREFIXES:
        starts = starts | expression.str.starts_with(prefix)
    return pl.when(starts).then(pl.lit("'") + expression).otherwise(expression)


def shape(frame: pl.DataFrame, columns: list[Column], timezone: str) -> pl.DataFrame:
    """Only the requested columns, in the requested order, labelled, as text-safe values."""
    expressions = []
    for column in columns:
        expression = pl.col(column.id)
        dtype = frame.schema[column.id]
        if column.id in TIME_COLUMNS:
            expression = expression.dt.convert_time_zone(timezone).dt.to_string(ISO_WITH_OFFSET)
            expressions.append(expression.alias(column.label))
            continue
        if dtype == pl.String:
            expression = neutralise_formulas(expression)
        expressions.append(expression.alias(column.label))
    return frame.select(expressions)
