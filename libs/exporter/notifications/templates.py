"""Placeholders in titles and texts, filled without ever running code.

``${export.name}``, ``${job.status}``, ``${download.url}`` …: dotted names looked up in a flat
mapping. An unknown placeholder stays visible, so a typo shows instead of vanishing.
"""

from __future__ import annotations

import re
from string import Template


class _Dotted(Template):
    idpattern = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*"
    flags = re.ASCII


def render(template: str, values: dict[str, str]) -> str:
    return _Dotted(template).safe_substitute(values)


def unknown_placeholders(template: str, values: dict[str, str]) -> list[str]:
    names = {match.group("named") or match.group("braced") for match in _Dotted.pattern.finditer(template)}
    return sorted(name for name in names if name and name not in values)
