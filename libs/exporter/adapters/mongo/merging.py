"""A compaction's merge: many segments of one series become few, with the same readings kept.

Pure: segments in, segments out. Column operations only (``numpy``), no Python object per
reading, except for text values, which are Python strings already.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exporter.adapters.mongo.segments import (
    BOOL_KINDS,
    NUMBER_KINDS,
    Segment,
    Tags,
    Times,
    Values,
    cuts,
    merged_id,
    rank,
)

# What a reading costs in a merged document besides a text value: time, arrival, number.
READING_BYTES = 24


def merge(segments: Sequence[Segment]) -> list[Segment]:
    """``segments`` (one series) as merged segments: one per tags, split before MAX_READINGS and
    MAX_BYTES, time-ascending, each reading's arrival kept, and no ``source``.

    Where the group holds two readings for one millisecond (whatever their tags), the one stored
    first wins, ties to the lower segment rank: ``first_arrived``, the reader's own rule, so a
    reader sees the same readings before and after. Ids derive from the originals' ids, so two
    compactors merging the same segments write the same ids.
    """
    if len({segment.series for segment in segments}) != 1:
        raise ValueError("a merge takes segments of exactly one series")
    counts = np.fromiter((s.count for s in segments), dtype=np.int64, count=len(segments))
    owners = np.repeat(np.arange(len(segments)), counts)
    times = np.concatenate([s.times for s in segments])
    arrivals = np.concatenate([s.arrivals for s in segments])
    ranks = np.repeat(np.fromiter((rank(s.id) for s in segments), dtype=np.int64), counts)
    order = np.lexsort((ranks, arrivals, times))
    ordered = times[order]
    first = np.ones(len(order), dtype=np.bool_)
    first[1:] = ordered[1:] != ordered[:-1]
    kept = order[first]
    within = np.arange(len(times)) - np.repeat(np.cumsum(counts) - counts, counts)
    pieces: list[tuple[Tags, Times, Values, Times]] = []
    for tags in dict.fromkeys(s.tags for s in segments):
        members = np.flatnonzero([s.tags == tags for s in segments])
        chosen = kept[np.isin(owners[kept], members)]
        if not len(chosen):
            continue
        offsets = np.zeros(len(segments), dtype=np.int64)
        offsets[members] = np.cumsum(counts[members]) - counts[members]
        local = offsets[owners[chosen]] + within[chosen]
        values = _gathered(tags.kind, [segments[i] for i in members.tolist()], local)
        for start, end in _cuts(values):
            pieces.append((tags, times[chosen[start:end]], values[start:end], arrivals[chosen[start:end]]))
    base = merged_id([s.id for s in segments])
    series = segments[0].series
    return [
        Segment(
            id=base if len(pieces) == 1 else piece_id(base, number),
            series=series,
            tags=tags,
            times=piece_times,
            values=values,
            arrivals=piece_arrivals,
        )
        for number, (tags, piece_times, values, piece_arrivals) in enumerate(pieces)
    ]


def piece_id(base: str, number: int) -> str:
    """The id of one piece of a merge that made several (per tags, or split)."""
    return merged_id([base, f"piece {number}"])


def _gathered(kind: str, members: list[Segment], local: np.ndarray) -> Values:
    """The values at ``local``, indexes into the values of ``members`` one after the other."""
    if kind in NUMBER_KINDS or kind in BOOL_KINDS:
        joined: np.ndarray = np.concatenate([np.asarray(m.values) for m in members])
        gathered: Values = joined[local]
        return gathered
    texts = [text for m in members for text in m.values]
    return [texts[index] for index in local.tolist()]


def _cuts(values: Values) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` pieces of at most MAX_READINGS readings and MAX_BYTES bytes."""
    if isinstance(values, list):
        sizes = np.fromiter((len(text.encode()) for text in values), dtype=np.int64, count=len(values))
    else:
        sizes = np.zeros(len(values), dtype=np.int64)
    return cuts(np.cumsum(sizes + READING_BYTES), 0, len(sizes))
