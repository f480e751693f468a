"""Where a downloaded file goes: always a plain file directly inside the chosen directory,
whatever name the server gives it (``../../.bashrc``, ``/etc/passwd``, ``C:\\x``, ``..``,
control characters): the server's names are data, not paths."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

MAX_NAME_CHARS = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_name(name: str, fallback: str) -> str:
    """The last path component of ``name`` with unsafe characters replaced, never empty, ``.``
    or ``..`` (then ``fallback``), nor hidden, and at most MAX_NAME_CHARS characters long."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1]
    cleaned = _UNSAFE.sub("_", base.strip()).strip().lstrip(".")
    if not cleaned:
        return fallback
    if len(cleaned) > MAX_NAME_CHARS:
        _, dot, suffix = cleaned.rpartition(".")
        keep = suffix if dot and len(suffix) <= 16 else ""
        cleaned = cleaned[: MAX_NAME_CHARS - len(keep) - 1] + ("." + keep if keep else "")
    return cleaned


def target_path(directory: Path, name: str, fallback: str) -> Path:
    """``directory``/``safe_name``; refuses to write through a link or over a non-file, and
    checks that the result is inside ``directory`` once resolved."""
    root = directory.resolve()
    path = root / safe_name(name, fallback)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ValueError(f"refusing to write {path}: it exists and is not a plain file")
    if path.resolve().parent != root:
        raise ValueError(f"refusing to write outside {root}: {name!r}")
    return path
