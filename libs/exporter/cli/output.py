"""How results are shown: ``-o json`` prints the API's JSON as it came, for scripts; ``-o table``
a rich table of the fields a person looks at first."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

MAX_CELL_CHARS = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def emit(data: Any, fmt: str, columns: Sequence[str] = (), out: TextIO | None = None) -> None:
    """``data`` as JSON or as a table; a page (``{"items": [...], "pagination": ...}``) shows its items."""
    stream = out or sys.stdout
    if fmt == "json":
        stream.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    console = Console(file=stream, width=200, soft_wrap=False)
    # A page has ``pagination`` beside its ``items``; an export request's ``items`` are its own.
    rows = data["items"] if isinstance(data, Mapping) and "pagination" in data else data
    if isinstance(rows, list):
        console.print(table(rows, columns))
        if isinstance(data, Mapping) and data.get("totalCount") is not None:
            console.print(f"{len(rows)} of {data['totalCount']}")
    elif isinstance(rows, Mapping):
        console.print(fields(rows))
    else:
        console.print(cell(rows))


def table(rows: Sequence[Any], columns: Sequence[str]) -> Table:
    """One row per item; ``columns`` (dotted paths), else every key of the first item."""
    chosen = list(columns) or (list(rows[0]) if rows and isinstance(rows[0], Mapping) else [])
    grid = Table(*chosen, show_lines=False)
    for row in rows:
        grid.add_row(*(cell(pick(row, column)) for column in chosen))
    return grid


def fields(item: Mapping[str, Any]) -> Table:
    grid = Table("field", "value", show_header=False)
    for key, value in item.items():
        grid.add_row(key, cell(value))
    return grid


def pick(item: Any, path: str) -> Any:
    """``item``'s value at a dotted path (``progress.rows``); None where it has no such field."""
    for part in path.split("."):
        item = item.get(part) if isinstance(item, Mapping) else None
    return item


def cell(value: Any) -> str:
    """A value as one table cell: long values cut, control characters (a hostile record's
    terminal escapes) shown as ``?``, rich markup escaped."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"
    return escape(_CONTROL.sub("?", text))
