"""File name masks: the placeholders a request's ``filenameMask`` may use, the formats each
takes, and what makes a name safe. Checked when a request is created; the renderer fills them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum

MAX_FILENAME_LENGTH = 120
# Seed 001's example `thingFileName`: what a thing's file is called unless the request says.
THING_FILE_MASK = "${thing.serialNumber}_${thingDefinition.name}"
# `${path}` or `${path:format}`; a path is dotted names, a format one its kind allows.
_PLACEHOLDER_RE = re.compile(r"\$\{(?P<path>[^}:]*)(?::(?P<spec>[^}]*))?\}")
_PLACEHOLDER_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PlaceholderKind(StrEnum):
    """What a placeholder's value is, and so which formats it takes (see ``placeholder_problem``)."""

    NUMBER = "number"
    TEXT = "text"
    TIME = "time"


# What a file name mask may refer to, checked at create; the renderer's `naming_context` offers
# exactly these for every item (empty text where an item's kind has no such value).
MASK_PLACEHOLDERS: Mapping[str, PlaceholderKind] = {
    **dict.fromkeys(("export.id", "export.name", "export.type"), PlaceholderKind.TEXT),
    **dict.fromkeys(("job.id", "job.tenant"), PlaceholderKind.TEXT),
    "job.scheduledAt": PlaceholderKind.TIME,
    "item.index": PlaceholderKind.NUMBER,
    **dict.fromkeys(("item.channelId", "item.subtopic"), PlaceholderKind.TEXT),
    **dict.fromkeys(
        ("target.value", "target.label", "target.publisher", "target.metric"), PlaceholderKind.TEXT
    ),
    **dict.fromkeys(
        (
            "thing.id",
            "thing.serialNumber",
            "thing.name",
            "thing.customerId",
            "thing.locationId",
            "thing.productModelId",
            "thing.productModelPartId",
        ),
        PlaceholderKind.TEXT,
    ),
    **dict.fromkeys(("thingDefinition.id", "thingDefinition.name"), PlaceholderKind.TEXT),
    "entity.type": PlaceholderKind.TEXT,
    **dict.fromkeys(("window.from", "window.to"), PlaceholderKind.TIME),
}
FILENAME_MASK_ROOTS = tuple(sorted({path.split(".")[0] for path in MASK_PLACEHOLDERS}))
# The formats each kind takes, so that no format can build a long string: numbers zero-padded to
# at most MAX_NUMBER_WIDTH, text only cut short (`.8`), times a strftime subset of bounded length.
MAX_NUMBER_WIDTH = 12
MAX_PIECE_LENGTH = MAX_FILENAME_LENGTH - 32
MAX_TIME_FORMAT_LENGTH = 32
TIME_DIRECTIVES = "YmdHMSjyb"
_NUMBER_SPEC_RE = re.compile(r"^0?([1-9][0-9]?)?d?$")
_TEXT_SPEC_RE = re.compile(r"^\.([0-9]{1,2})$")
_TIME_SPEC_RE = re.compile(rf"^(?:%[{TIME_DIRECTIVES}]|[A-Za-z0-9 _.-])+$")
_SPEC_FORMS = {
    PlaceholderKind.NUMBER: (
        f"a number takes no format but zero-padding such as :03d (width at most {MAX_NUMBER_WIDTH})"
    ),
    PlaceholderKind.TEXT: f"a text takes no format but a truncation such as :.8 (at most {MAX_PIECE_LENGTH})",
    PlaceholderKind.TIME: (
        f"a time takes a format of at most {MAX_TIME_FORMAT_LENGTH} characters made of "
        + " ".join(f"%{directive}" for directive in TIME_DIRECTIVES)
        + ", letters, digits, spaces and '-', '_', '.'"
    ),
}


def placeholder_problem(kind: PlaceholderKind, spec: str) -> str | None:
    """Why ``spec`` is not a format a ``kind`` placeholder takes, or None when it is one."""
    if kind is PlaceholderKind.NUMBER:
        match = _NUMBER_SPEC_RE.match(spec)
        allowed = match is not None and int(match[1] or 0) <= MAX_NUMBER_WIDTH
    elif kind is PlaceholderKind.TEXT:
        match = _TEXT_SPEC_RE.match(spec)
        allowed = match is not None and int(match[1]) <= MAX_PIECE_LENGTH
    else:
        allowed = len(spec) <= MAX_TIME_FORMAT_LENGTH and _TIME_SPEC_RE.match(spec) is not None
    return None if allowed else _SPEC_FORMS[kind]


def safe_filename(name: str) -> str:
    """Refuses names that could escape a folder or confuse a shell, a browser or a spreadsheet."""
    if not name or not name.strip():
        raise ValueError("must not be empty")
    if len(name) > MAX_FILENAME_LENGTH:
        raise ValueError(f"must be at most {MAX_FILENAME_LENGTH} characters")
    if "/" in name or "\\" in name:
        raise ValueError("must not contain path separators")
    if name in {".", ".."} or name.startswith("."):
        raise ValueError("must not start with a dot")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise ValueError("must not contain control characters")
    return name


def mask_placeholders(mask: str) -> list[tuple[re.Match[str], PlaceholderKind]]:
    """The ``${path[:format]}`` placeholders of a file name mask with their kinds, each path one of
    MASK_PLACEHOLDERS and each format one its kind takes."""
    placeholders = list(_PLACEHOLDER_RE.finditer(mask))
    if "${" in _PLACEHOLDER_RE.sub("", mask):
        raise ValueError("has a '${' without its closing '}'")
    kinds = []
    for placeholder in placeholders:
        path, text = placeholder["path"], placeholder[0]
        if not _PLACEHOLDER_PATH_RE.match(path):
            raise ValueError(f"'{text}' is not a placeholder such as ${{thing.serialNumber}}")
        root = path.split(".")[0]
        if root not in FILENAME_MASK_ROOTS:
            roots = ", ".join(FILENAME_MASK_ROOTS)
            raise ValueError(f"'{text}' refers to an unknown object; use one of: {roots}")
        kind = MASK_PLACEHOLDERS.get(path)
        if kind is None:
            known = ", ".join(known for known in MASK_PLACEHOLDERS if known.split(".")[0] == root)
            raise ValueError(f"'{text}' is not a placeholder of {root}; use one of: {known}")
        if placeholder["spec"] and (problem := placeholder_problem(kind, placeholder["spec"])):
            raise ValueError(f"'{text}': {problem}")
        kinds.append((placeholder, kind))
    return kinds


def filename_mask(mask: str) -> str:
    """A file name (without extension) that may hold placeholders; its fixed parts must be safe."""
    safe_filename(mask)
    mask_placeholders(mask)
    return mask
