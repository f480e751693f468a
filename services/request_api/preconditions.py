"""Conditional requests (RFC 9110 §13) on export requests and jobs.

An export request's ETag is its version, strong (``"3"``): the version changes with every write
of the request (create, edit, delete), so ``If-Match`` can use the strong comparison RFC 9110
asks of it, and the edit that checks it is guarded by that same version (one atomic update).
The schedule's read-outs (``status``, ``lastRunAt``, ``nextRunTimes``) are the scheduler's
bookkeeping, not a new version: a ``304`` says the request is unchanged, not that it did not run.
A job has no version: its ETag is a digest of its answer, so a poller gets ``304`` until it moves.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from request_api.errors import BadRequest

MAX_HEADER = 1000
# A list of entity-tags, or "*" (RFC 9110 §8.8.3, §13.1.1).
_TAG = r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"'
_TAG_LIST = re.compile(rf"\s*{_TAG}(?:\s*,\s*{_TAG})*\s*")


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed ``If-Match``/``If-None-Match``: ``any`` for ``*``, else its tags (weak ones
    marked, as ``W/"…"``, so that the strong comparison can refuse them)."""

    any: bool
    tags: frozenset[str]

    def matches_strongly(self, etag: str) -> bool:
        return self.any or etag in self.tags

    def matches_weakly(self, etag: str) -> bool:
        return self.any or etag.removeprefix("W/") in {tag.removeprefix("W/") for tag in self.tags}


def parse(name: str, value: str | None) -> Condition | None:
    """The header's condition; None without the header. A bounded, well-formed list, else 400."""
    if value is None:
        return None
    if len(value) > MAX_HEADER:
        raise BadRequest(f"{name}: must be at most {MAX_HEADER} characters long")
    if value.strip() == "*":
        return Condition(any=True, tags=frozenset())
    if _TAG_LIST.fullmatch(value) is None:
        raise BadRequest(f'{name}: must be "*" or a list of entity-tags such as "3"')
    return Condition(any=False, tags=frozenset(f'{weak}"{tag}"' for weak, tag in re.findall(_TAG, value)))


def version_tag(version: int) -> str:
    return f'"{version}"'


def digest_tag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'
