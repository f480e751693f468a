"""When a run may read its window: arrival windows settle, windows by measured time do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from exporter.contracts.job import Window
from renderer.items import settle_delay

END = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)


def test_an_arrival_window_is_read_once_it_settled() -> None:
    window = Window(item=0, from_=END - timedelta(hours=1), to=END, by="arrival")
    assert settle_delay(window, END, 5.0) == 5.0
    assert settle_delay(window, END + timedelta(seconds=2), 5.0) == 3.0
    assert settle_delay(window, END - timedelta(seconds=1), 5.0) == 6.0  # fired early
    assert settle_delay(window, END + timedelta(seconds=5), 5.0) == 0.0
    assert settle_delay(window, END + timedelta(hours=1), 5.0) == 0.0


def test_other_windows_are_read_at_once() -> None:
    assert settle_delay(Window(item=0, from_=END - timedelta(hours=1), to=END), END, 5.0) == 0.0
    assert settle_delay(Window(item=0, from_=END, by="arrival"), END, 5.0) == 0.0
