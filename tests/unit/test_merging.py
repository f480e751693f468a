"""The merge and the choice of what to merge, without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exporter.adapters.mongo import merging
from exporter.adapters.mongo import segments as layout
from exporter.adapters.mongo.client import Document
from exporter.adapters.mongo.merging import merge, piece_id
from exporter.adapters.mongo.segments import (
    Segment,
    Series,
    Tags,
    first_arrived,
    frame_of,
    merged_id,
    rank,
    to_document,
)
from ingestor.compaction import group_of, groups_to_merge, members
from tests.compaction_cases import SERIES, T0, ingested

TEXT = Tags("", "mqtt", "stringValue")


def seen(segments: list[Segment]) -> list[tuple[object, ...]]:
    """What a reader makes of ``segments``, without the ranks (a merge changes those)."""
    return first_arrived(frame_of(segments)).drop("rank").sort("time").rows()


def test_a_tie_goes_to_the_lower_rank_as_the_reader_decides() -> None:
    one, two = ingested([0, 1000], [1.0, 2.0], T0), ingested([1000], [20.0], T0)
    low, high = sorted((one, two), key=lambda segment: rank(segment.id))
    merged = merge([high, low])
    assert [piece.id for piece in merged] == [merged_id([one.id, two.id])]
    assert seen(merged) == seen([one, two])
    assert merged[0].source is None


def test_text_is_split_before_max_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "MAX_BYTES", 3 * (merging.READING_BYTES + 10))
    texts = ["x" * 10] * 5
    segments = [ingested(range(k * 5000, k * 5000 + 5000, 1000), texts, T0, tags=TEXT) for k in (0, 1)]
    merged = merge(segments)
    assert [piece.count for piece in merged] == [3, 3, 3, 1]
    base = merged_id([segment.id for segment in segments])
    assert [piece.id for piece in merged] == [piece_id(base, number) for number in range(4)]
    assert seen(merged) == seen(segments)
    assert all(len(to_document(piece)["values"]) == piece.count for piece in merged)


def test_a_merge_takes_one_series() -> None:
    other = ingested([0], [1.0], T0, series=Series("t1", "ch", "events", "dev-2", "temp"))
    with pytest.raises(ValueError, match="one series"):
        merge([ingested([0], [1.0], T0), other])


def document(times: list[int], arrived: datetime, count: int | None = None, source: bool = True) -> Document:
    segment = ingested(times, [1.0] * len(times), int(arrived.timestamp() * 1000))
    stored = to_document(segment) | ({"count": count} if count else {})
    return stored if source else {key: value for key, value in stored.items() if key != "source"}


def test_the_settled_segments_of_the_group_are_taken() -> None:
    arrived = datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(hours=1)
    settled = arrived + timedelta(minutes=1)
    small, overlapping = document([0, 1000], arrived), document([1000, 2000], arrived)
    unsettled = document([8000], settled)
    other_day = document([9000], arrived - timedelta(days=1))
    taken = members([small, unsettled, overlapping, other_day], group_of(small), settled)
    assert [d["_id"] for d in taken] == [small["_id"], overlapping["_id"]]


def test_only_small_ingested_segments_name_groups_earliest_first() -> None:
    arrived = datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(hours=1)
    later = document([0], arrived + timedelta(seconds=5))
    earlier = document([1000], arrived)
    merged_before = document([2000], arrived, source=False)
    big = document([3000], arrived, count=9000)
    groups = groups_to_merge([later, earlier, merged_before, big], target=5000)
    assert groups == [(group_of(earlier), arrived)]
    assert groups[0][0].series == SERIES
