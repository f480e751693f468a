"""Why a stored document no longer validates, in words fit to show, log and store."""

from __future__ import annotations

from pydantic import ValidationError

# A few of them: the reason is shown, logged and stored, and a document has many fields.
SHOWN_FIELDS = 5


def unreadable_because(error: ValidationError) -> str:
    """The paths of the fields that failed, never their values: those are the owner's data."""
    fields = sorted({".".join(str(part) for part in e["loc"]) for e in error.errors()})
    more = f" and {len(fields) - SHOWN_FIELDS} more" if len(fields) > SHOWN_FIELDS else ""
    return f"its stored fields no longer validate: {', '.join(fields[:SHOWN_FIELDS])}{more}"
