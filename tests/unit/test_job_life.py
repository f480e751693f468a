"""The job's transitions as the repository's filters state them."""

from __future__ import annotations

import pytest

from exporter.adapters.mongo.job_store import leaving, status_in
from exporter.domain.job_life import ACTIVE_STATUSES, TRANSITIONS, JobStatus, Transition


def matches(condition: object, status: JobStatus) -> bool:
    """What MongoDB's equality, ``$in`` and ``$ne`` on a string field decide."""
    if isinstance(condition, str):
        return status.value == condition
    assert isinstance(condition, dict)
    [(operator, operand)] = condition.items()
    if operator == "$in":
        return status.value in operand
    assert operator == "$ne"
    return bool(status.value != operand)


@pytest.mark.parametrize("transition", TRANSITIONS, ids=lambda t: t.name)
def test_each_transitions_guard_matches_exactly_its_sources(transition: Transition) -> None:
    guard = leaving(transition, "job-1")
    assert guard["_id"] == "job-1"
    assert {s for s in JobStatus if matches(guard["status"], s)} == transition.sources


def test_no_transition_leaves_a_final_status_except_to_expire() -> None:
    for transition in TRANSITIONS:
        if transition.name != "expire":
            assert all(not source.is_final for source in transition.sources), transition.name


def test_the_quota_counts_queued_and_running_jobs() -> None:
    assert {s for s in JobStatus if matches(status_in(ACTIVE_STATUSES), s)} == {
        JobStatus.NOT_PROCESSED,
        JobStatus.IN_PROGRESS,
    }
