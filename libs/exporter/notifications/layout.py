"""The default layout of a notice in each medium's own markup, with the medium's escaping.

Every text that came from a request or a job (title, text, names, errors) is escaped for the
markup it lands in: HTML for email, Slack's ``&<>`` entities; Discord gets no mentions. Lengths
are fitted to each medium's limits by shortening the message's own text first, so the facts
and the links always survive.
"""

from __future__ import annotations

import html
import re
from typing import Any

from exporter.notifications.messages import FileEntry, Notice, human_size, iso

ELLIPSIS = "…"
_URL_RE = re.compile(r"https?://[^\s<>\"']+")


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def _file_lines(files: tuple[FileEntry, ...]) -> list[str]:
    return [
        f"- {entry.link.name} ({human_size(entry.link.size_in_bytes)}), {entry.note}: {entry.link.url}"
        for entry in files
    ]


def _expiry(files: tuple[FileEntry, ...]) -> str:
    return f"Links valid until {iso(min(entry.link.expires_at for entry in files))}." if files else ""


def plain_text(notice: Notice, files: tuple[FileEntry, ...], limit: int | None = None) -> str:
    """The text part of an email, and the whole message where there is no markup (Telegram)."""
    details = [f"{name}: {value}" for name, value in notice.facts]
    if files:
        details += ["", "Files:", *_file_lines(files), _expiry(files)]
    tail = "\n".join(details)
    if not notice.body:
        return tail if limit is None else shorten(tail, limit)
    room = None if limit is None else limit - len(tail) - 2
    body = notice.body if room is None else shorten(notice.body, max(room, 0))
    return f"{body}\n\n{tail}" if body else tail


def _html_paragraph(text: str) -> str:
    """Escapes everything, then links the URLs and keeps the line breaks."""
    escaped = html.escape(text, quote=True)
    linked = _URL_RE.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
    return linked.replace("\n", "<br>\n")


def html_text(notice: Notice, files: tuple[FileEntry, ...]) -> str:
    """The HTML part of an email: the same content as ``plain_text``, nothing of it unescaped."""
    esc = html.escape
    colour = "#1a7f37" if notice.succeeded else "#cf222e"
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>' + esc(notice.subject) + "</title></head>",
        '<body style="font-family: Helvetica, Arial, sans-serif; color: #1f2328; line-height: 1.4;">',
        f'<h2 style="margin: 0 0 12px; border-left: 4px solid {colour}; padding-left: 8px;">'
        f"{esc(notice.subject)}</h2>",
    ]
    if notice.body:
        parts.append(f"<p>{_html_paragraph(notice.body)}</p>")
    parts.append('<table style="border-collapse: collapse; margin: 12px 0;">')
    parts += [
        f'<tr><th style="text-align: left; padding: 2px 16px 2px 0;">{esc(name)}</th>'
        f"<td>{esc(value)}</td></tr>"
        for name, value in notice.facts
    ]
    parts.append("</table>")
    if files:
        parts.append("<ul>")
        parts += [
            f'<li><a href="{esc(entry.link.url)}">{esc(entry.link.name)}</a> '
            f"({esc(human_size(entry.link.size_in_bytes))}), {esc(entry.note)}</li>"
            for entry in files
        ]
        parts.append("</ul>")
        parts.append(f'<p style="color: #59636e; font-size: smaller;">{esc(_expiry(files))}</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _slack_escape(text: str) -> str:
    """Slack's three entities; without them ``<!channel>`` in a title would ping everyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


SLACK_TEXT_LIMIT = 3_900  # Slack truncates past 40 000 and advises under 4 000


def slack_text(notice: Notice, files: tuple[FileEntry, ...]) -> str:
    lines = [f"*{_slack_escape(notice.subject)}*"]
    facts = [f"*{_slack_escape(name)}:* {_slack_escape(value)}" for name, value in notice.facts]
    file_lines = [
        f"• <{entry.link.url}|{_slack_escape(entry.link.name)}> "
        f"({human_size(entry.link.size_in_bytes)}), {_slack_escape(entry.note)}"
        for entry in files
    ]
    tail = "\n".join(facts + file_lines + ([_expiry(files)] if files else []))
    if notice.body:
        room = SLACK_TEXT_LIMIT - len(tail) - len(lines[0]) - 4
        lines.append(shorten(_slack_escape(notice.body), max(room, 0)))
    return "\n".join([*lines, "", tail])


DISCORD_TITLE_LIMIT = 256
DISCORD_DESCRIPTION_LIMIT = 4_096
DISCORD_FIELD_LIMIT = 1_024


def discord_payload(notice: Notice, files: tuple[FileEntry, ...]) -> dict[str, Any]:
    """A webhook message with one embed; ``allowed_mentions`` empty, so no text can ping anyone."""
    file_lines = "\n".join(
        f"[{entry.link.name}]({entry.link.url}) ({human_size(entry.link.size_in_bytes)}), {entry.note}"
        for entry in files
    )
    tail = f"{file_lines}\n{_expiry(files)}" if files else ""
    room = DISCORD_DESCRIPTION_LIMIT - len(tail) - 2
    description = "\n\n".join(part for part in (shorten(notice.body, max(room, 0)), tail) if part)
    embed: dict[str, Any] = {
        "title": shorten(notice.subject, DISCORD_TITLE_LIMIT),
        "color": 0x1A7F37 if notice.succeeded else 0xCF222E,
        "fields": [
            {"name": name, "value": shorten(value, DISCORD_FIELD_LIMIT), "inline": len(value) < 40}
            for name, value in notice.facts
        ],
    }
    if description:
        embed["description"] = description
    if files:
        embed["url"] = files[0].link.url
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}
