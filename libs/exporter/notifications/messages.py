"""The words of a notification: placeholder values and the default layout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exporter.contracts.events import ExportCompletedData
from exporter.contracts.job import JobSpec
from exporter.contracts.request import NotificationMessage
from exporter.notifications.templates import render


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    text: str


def _iso(value: datetime | None) -> str:
    return "open" if value is None else value.isoformat().replace("+00:00", "Z")


def placeholder_values(spec: JobSpec, outcome: ExportCompletedData, links: list[Link]) -> dict[str, str]:
    first_window = spec.windows[0] if spec.windows else None
    return {
        "export.name": spec.request.name or spec.request_id,
        "export.id": spec.request_id,
        "job.id": spec.job_id,
        "job.status": outcome.status.value,
        "job.rows": str(outcome.row_count),
        "job.size": str(outcome.size_in_bytes),
        "job.scheduledAt": _iso(spec.scheduled_at),
        "job.window.from": _iso(first_window.from_ if first_window else None),
        "job.window.to": _iso(first_window.to if first_window else None),
        "download.url": links[0].url if links else "",
        "download.expiresAt": _iso(links[0].expires_at) if links else "",
        "error": outcome.error or "",
    }


def default_text(values: dict[str, str], links: list[Link]) -> str:
    lines = [
        f"Export: {values['export.name']}",
        f"Status: {values['job.status']}",
        f"Window: {values['job.window.from']} to {values['job.window.to']}",
        f"Rows: {values['job.rows']}",
        f"Size: {values['job.size']} bytes",
    ]
    if values["error"]:
        lines.append(f"Error: {values['error']}")
    for link in links:
        lines.append(f"Download {link.name}: {link.url}")
        lines.append(f"The link expires at {_iso(link.expires_at)}.")
    return "\n".join(lines)


def compose(message: NotificationMessage, values: dict[str, str], links: list[Link]) -> Notice:
    """The message's own title and text with placeholders filled, or the default layout."""
    subject = (
        render(message.title, values)
        if message.title
        else f"Export {values['export.name']}: {values['job.status']}"
    )
    body = render(message.text, values) if message.text else ""
    details = default_text(values, links)
    text = f"{body}\n\n{details}" if body else details
    return Notice(subject=subject, text=text)
