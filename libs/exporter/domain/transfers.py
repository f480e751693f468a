"""Pushing a run's files to its transfer location: the rules, over plain data.

**Reachable destinations.** A location names a host a tenant chose; the services run inside our
network, so a host that is, or resolves to, a private, loopback, link-local, multicast or
reserved address would let a tenant reach our own servers (SSRF). Such hosts are refused at
create/edit time and again before every push (DNS may answer differently by then), unless
``transfer.allow_private_addresses`` is set (local runs and tests). Plain ``http://`` is refused
under the same setting.

**A file's transfer**, kept on the job (``transfers[i]``, one per file), moves like a
notification's delivery: ``pending`` → ``pushing`` (claimed with a lease, a compare-and-set on
its attempt count) → ``done`` | ``retrying`` (a transient failure, again at ``nextAttemptAt``,
with exponential backoff) | ``failed`` (gave up after ``max_attempts``, or refused for good).

**Exactly once, per kind.** Unlike a notification, a push is repeatable: its object name is
deterministic (the location's prefix or directory, then the file's name), so pushing the same
file again writes the same bytes at the same name. A ``pushing`` entry past its lease (the
notifier died mid-push) is therefore taken up again (``retrying``), never given up on: no file is
lost, and what a repeat leaves at the destination is what one push leaves. On S3 and SFTP that is
one object of that name; on HTTPS it is a second PUT of the same body to the same URL, which HTTP
defines as idempotent (and it carries the file's checksum, so a receiver can tell).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from exporter.contracts.job import Job


class TransferStatus(StrEnum):
    PENDING = "pending"
    PUSHING = "pushing"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"


CLAIMABLE_TRANSFERS = frozenset({TransferStatus.PENDING, TransferStatus.RETRYING})
SETTLED_TRANSFERS = frozenset({TransferStatus.DONE, TransferStatus.FAILED})


def address_problem(host: str, addresses: list[str], allow_private: bool) -> str | None:
    """Why ``host`` (which resolved to ``addresses``) may not be reached, or None."""
    if not addresses:
        return f"host '{host}' does not resolve"
    if allow_private:
        return None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return (
                f"host '{host}' resolves to {ip}, a private, loopback or reserved address, "
                "which transfer locations may not reach"
            )
    return None


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why a URL may not be a destination (its scheme or form), or None; its host is checked by
    ``address_problem``."""
    parts = urlsplit(url)
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in schemes:
        return f"must be an {' or '.join(sorted(schemes))} URL"
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        return "must name a host, and no user, password or fragment"
    return None


def object_name(prefix: str, file_name: str) -> str:
    """Where a file lands: deterministic, so a repeated push overwrites its own object."""
    prefix = prefix.strip("/")
    return f"{prefix}/{file_name}" if prefix else file_name


def transfer_fields(job: Job) -> tuple[str | None, str | None, str | None]:
    """Seed 004's ``transferLocationId``, ``transferLocationName`` and ``fileMoveLogIdentity``.

    The file-move log is the job's own ``transfers`` (shown by ``GET /jobs/{id}``), so its
    identity is the job's id; None while the run pushes nothing.
    """
    log_identity = job.id if job.transfers else None
    return named_location(job), job.transfer_location_name, log_identity


def named_location(job: Job) -> str | None:
    """The location the job's request named (the job keeps the spec it ran with)."""
    if job.transfer_location_id is not None:
        return job.transfer_location_id
    request = (job.spec or {}).get("request")
    named = request.get("transferLocationId") if isinstance(request, dict) else None
    return named if isinstance(named, str) else None
