"""What a notification says, whatever the medium: placeholder values, facts, files and their plan.

A notice always carries the facts and the download links, so a message never goes out empty or
without a way to the file, even when its own text is blank (Metabase's silent emails).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from exporter.contracts.job import JobResult, JobSpec
from exporter.contracts.notification import NotificationMessage
from exporter.domain.job_life import JobStatus
from exporter.notifications.templates import render, unknown_placeholders


@dataclass(frozen=True, slots=True)
class FileLink:
    name: str
    url: str
    expires_at: datetime
    size_in_bytes: int
    key: str
    content_type: str


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file as one medium carries it: attached, or linked only because it is too large."""

    link: FileLink
    attached: bool
    note: str


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str
    """The message's own text with placeholders filled; empty when it has none."""
    facts: tuple[tuple[str, str], ...]
    links: tuple[FileLink, ...]
    succeeded: bool
    unknown_placeholders: tuple[str, ...]


def iso(value: datetime | None) -> str:
    return "open" if value is None else value.isoformat().replace("+00:00", "Z")


def human_size(size: int) -> str:
    """``532 B``, ``1.2 kB``, ``10.0 MB``: decimal units, as mail clients and browsers show them."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def base64_size(size: int) -> int:
    """Bytes a MIME attachment of ``size`` bytes takes: 4 per 3, plus CRLF every 76 characters."""
    encoded = 4 * math.ceil(size / 3)
    return encoded + 2 * math.ceil(encoded / 76)


def plan_files(
    links: tuple[FileLink, ...], limit: int, encoded_size: Callable[[int], int] = lambda size: size
) -> tuple[FileEntry, ...]:
    """Attaches files in order while their encoded total stays within ``limit``; the rest are links.

    Each entry says which it is, so a reader never wonders where the file went.
    """
    entries: list[FileEntry] = []
    used = 0
    for link in links:
        size = encoded_size(link.size_in_bytes)
        if limit > 0 and used + size <= limit:
            used += size
            entries.append(FileEntry(link, attached=True, note="attached"))
        elif limit > 0:
            note = f"too large to attach here (limit {human_size(limit)}): download it with the link"
            entries.append(FileEntry(link, attached=False, note=note))
        else:
            entries.append(FileEntry(link, attached=False, note="download it with the link"))
    return tuple(entries)


def placeholder_values(spec: JobSpec, result: JobResult, links: tuple[FileLink, ...]) -> dict[str, str]:
    """Every ``${name}`` a title or text may use; all values are plain strings."""
    first_window = spec.windows[0] if spec.windows else None
    first_link = links[0] if links else None
    return {
        "export.name": spec.request.name or spec.request_id,
        "export.id": spec.request_id,
        "export.format": spec.request.format.extension,
        "job.id": spec.job_id,
        "job.status": result.status.value,
        "job.rows": str(result.row_count),
        "job.size": str(result.size_in_bytes),
        "job.scheduledAt": iso(spec.scheduled_at),
        "job.startedAt": iso(result.started_at),
        "job.completedAt": iso(result.completed_at),
        "job.window.from": iso(first_window.from_ if first_window else None),
        "job.window.to": iso(first_window.to if first_window else None),
        "download.url": first_link.url if first_link else "",
        "download.name": first_link.name if first_link else "",
        "download.expiresAt": iso(first_link.expires_at) if first_link else "",
        "files.count": str(len(links)),
        "error": result.error or "",
    }


def _facts(spec: JobSpec, result: JobResult, values: dict[str, str]) -> tuple[tuple[str, str], ...]:
    facts = [("Export", values["export.name"]), ("Status", values["job.status"])]
    for window in spec.windows:
        label = "Window" if len(spec.windows) == 1 else f"Window {window.item + 1}"
        facts.append((label, f"{iso(window.from_)} to {iso(window.to)}"))
    if result.status is JobStatus.DONE:
        facts += [("Rows", values["job.rows"]), ("Size", human_size(result.size_in_bytes))]
    if result.error:
        facts.append(("Error", result.error))
    return tuple(facts)


def compose(
    message: NotificationMessage, spec: JobSpec, result: JobResult, links: tuple[FileLink, ...]
) -> Notice:
    """The message's title and text with placeholders filled, and the default layout's facts."""
    values = placeholder_values(spec, result, links)
    subject = (
        render(message.title, values)
        if message.title
        else f"Export {values['export.name']}: {values['job.status']}"
    )
    unknown = sorted(
        set(unknown_placeholders(message.title, values) + unknown_placeholders(message.text, values))
    )
    return Notice(
        subject=" ".join(subject.split()),  # a subject is one line
        body=render(message.text, values).strip(),
        facts=_facts(spec, result, values),
        links=links,
        succeeded=result.status is JobStatus.DONE,
        unknown_placeholders=tuple(unknown),
    )
