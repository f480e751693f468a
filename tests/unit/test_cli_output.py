"""What the ``exporter`` command prints, and where a download may land."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from exporter.cli.jobs import Meter
from exporter.cli.output import emit
from exporter.cli.paths import MAX_NAME_CHARS, safe_name, target_path


def test_json_is_the_api_answer_unchanged() -> None:
    answer = {"items": [{"id": "e1", "name": "Unità"}], "totalCount": 1, "page": 1}
    out = io.StringIO()
    emit(answer, "json", ("id",), out=out)
    assert json.loads(out.getvalue()) == answer


def test_a_page_shows_its_items_and_chosen_columns() -> None:
    out = io.StringIO()
    emit(
        {"items": [{"id": "e1", "format": {"extension": "csv"}, "x": 1}], "pagination": {}, "totalCount": 7},
        "table",
        ("id", "format.extension"),
        out=out,
    )
    text = out.getvalue()
    assert "e1" in text
    assert "csv" in text
    assert "1 of 7" in text
    assert "x" not in text.split("\n", 1)[0]


def test_hostile_values_cannot_drive_the_terminal_or_the_markup() -> None:
    out = io.StringIO()
    emit([{"reason": "\x1b]0;owned\x07[bold red]x[/]" + "y" * 500}], "table", out=out)
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "[bold red]x[/]" in text
    assert "y" * 100 not in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.csv", "report.csv"),
        ("../../.bashrc", "bashrc"),
        ("/etc/passwd", "passwd"),
        ("C:\\Windows\\win.ini", "win.ini"),
        ("..", "fallback"),
        ("", "fallback"),
        ("a/b/", "fallback"),
        ("evil\x00.csv\n", "evil_.csv"),
        ("x:y*z?.csv", "x_y_z_.csv"),
    ],
)
def test_server_names_become_plain_names(name: str, expected: str) -> None:
    assert safe_name(name, "fallback") == expected


def test_long_names_are_cut_keeping_the_extension() -> None:
    cut = safe_name("n" * 10_000 + ".xlsx", "f")
    assert len(cut) == MAX_NAME_CHARS
    assert cut.endswith(".xlsx")


def test_targets_stay_inside_the_directory(tmp_path: Path) -> None:
    assert target_path(tmp_path, "../../../../tmp/x.csv", "f") == tmp_path.resolve() / "x.csv"
    (tmp_path / "link.csv").symlink_to("/etc/hostname")
    with pytest.raises(ValueError, match="not a plain file"):
        target_path(tmp_path, "link.csv", "f")
    (tmp_path / "adir").mkdir()
    with pytest.raises(ValueError, match="not a plain file"):
        target_path(tmp_path, "adir", "f")


def test_watch_line_shows_rate_and_an_eta_only_when_a_total_is_known() -> None:
    meter = Meter()
    job = {"id": "j1", "status": "inProgress", "progress": {"rows": 1000}}
    meter.line(job, now=10.0)
    later = meter.line({**job, "progress": {"rows": 3000}}, now=12.0)
    assert later == "job j1: inProgress · 3,000 rows · 1,000 rows/s"
    with_total = meter.line({**job, "progress": {"rows": 5000, "totalRows": 65_000}}, now=14.0)
    assert with_total.endswith("1,000 rows/s · ETA 0:01:00")


def test_an_export_request_is_shown_whole_not_as_a_page_of_its_items() -> None:
    out = io.StringIO()
    emit({"id": "e1", "name": "Plant", "items": [{"filename": "f"}]}, "table", ("id",), out=out)
    assert "Plant" in out.getvalue()
