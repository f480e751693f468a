"""The job's life in one place: its statuses, the transitions between them and who makes each,
and the life of each of its notification messages' deliveries.

The jobs repository (``adapters/mongo/jobs.py`` and its parts) only carries these transitions
out: each is one guarded write whose filter names the transition's ``sources``, so concurrent or
redelivered work can never move a job twice.

A job is created ``notProcessed`` (or ``skipped``: a run the scheduler did not queue), then::

    notProcessed ──start──────► inProgress ──finish──► done | failed | cancelled   (renderer)
    inProgress ────start──────► inProgress    a take-over: its renderer's lease ran out
    notProcessed | inProgress ──cancel──► cancelled                                (API)
    notProcessed ──cancel_queued──► cancelled     its request was deleted          (API)
    inProgress ────requeue────► notProcessed   stuck: tried again              (scheduler)
    inProgress ────fail_stuck─► failed         stuck: given up on              (scheduler)
    notProcessed ──announce───► notProcessed   lost: announced again           (scheduler)
    notProcessed ──fail_lost──► failed         lost: given up on               (scheduler)
    any but expired ──expire──► expired                                      (scheduler)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobStatus(StrEnum):
    """The Connhex job statuses, plus ``cancelled`` and ``skipped`` (a scheduled run the
    scheduler did not queue: its owner's quota was full or its target busy; the job's ``error``
    says which)."""

    NOT_PROCESSED = "notProcessed"
    IN_PROGRESS = "inProgress"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {JobStatus.DONE, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED, JobStatus.SKIPPED}
)
# Queued or running: what the queued-jobs quota counts and what keeps a target busy.
ACTIVE_STATUSES = frozenset({JobStatus.NOT_PROCESSED, JobStatus.IN_PROGRESS})


class Actor(StrEnum):
    """Who moves a job: each transition belongs to one service."""

    API = "request-api"
    SCHEDULER = "scheduler"
    RENDERER = "renderer"
    NOTIFIER = "notifier"


@dataclass(frozen=True, slots=True)
class Transition:
    """``sources`` → ``targets``, made by ``by``; a job in any other status is left as it is."""

    name: str
    sources: frozenset[JobStatus]
    targets: frozenset[JobStatus]
    by: Actor


def _transition(name: str, sources: set[JobStatus], targets: set[JobStatus], by: Actor) -> Transition:
    return Transition(name, frozenset(sources), frozenset(targets), by)


_S = JobStatus
# A job whose renderer's lease ran out is started again by another renderer (a take-over).
START = _transition("start", {_S.NOT_PROCESSED, _S.IN_PROGRESS}, {_S.IN_PROGRESS}, Actor.RENDERER)
FINISH = _transition("finish", {_S.IN_PROGRESS}, {_S.DONE, _S.FAILED, _S.CANCELLED}, Actor.RENDERER)
CANCEL = _transition("cancel", set(ACTIVE_STATUSES), {_S.CANCELLED}, Actor.API)
# A deleted request's jobs that no renderer has started.
CANCEL_QUEUED = _transition("cancel_queued", {_S.NOT_PROCESSED}, {_S.CANCELLED}, Actor.API)
# A stuck job (its renderer stopped, or it ran past the working timeout): tried again, or failed.
REQUEUE = _transition("requeue", {_S.IN_PROGRESS}, {_S.NOT_PROCESSED}, Actor.SCHEDULER)
FAIL_STUCK = _transition("fail_stuck", {_S.IN_PROGRESS}, {_S.FAILED}, Actor.SCHEDULER)
EXPIRE = _transition("expire", set(JobStatus) - {_S.EXPIRED}, {_S.EXPIRED}, Actor.SCHEDULER)
# A lost job (announced, its event published, and no renderer started it): announced again, or
# failed after so many announcements.
ANNOUNCE = _transition("announce", {_S.NOT_PROCESSED}, {_S.NOT_PROCESSED}, Actor.SCHEDULER)
FAIL_LOST = _transition("fail_lost", {_S.NOT_PROCESSED}, {_S.FAILED}, Actor.SCHEDULER)

TRANSITIONS = (START, FINISH, CANCEL, CANCEL_QUEUED, REQUEUE, FAIL_STUCK, EXPIRE, ANNOUNCE, FAIL_LOST)


class DeliveryStatus(StrEnum):
    """A message's delivery, as kept on the job (``notifications[i].status``); the notifier
    makes every move.

    ``pending`` → ``skipped`` (policy does not match), or ``pending`` → ``sending`` (claimed, in
    flight) → ``sent``/``failed``, or → ``retrying`` (a transient failure, tried again at
    ``nextAttemptAt``) → ``sending`` …; a ``sending`` past its lease was cut off → ``failed``.
    """

    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


# The deliveries a notifier may claim.
CLAIMABLE = frozenset({DeliveryStatus.PENDING, DeliveryStatus.RETRYING})
