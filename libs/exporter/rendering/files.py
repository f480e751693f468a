"""Names and keys of export files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from exporter.contracts.request import Item


def file_names(items: list[Item], extension: str) -> list[str]:
    """One name per item: its ``filename`` or ``export-N``, made unique within the job."""
    names: list[str] = []
    for index, item in enumerate(items, start=1):
        stem = item.filename or f"export-{index}"
        candidate, suffix = f"{stem}.{extension}", 2
        while candidate in names:
            candidate, suffix = f"{stem}-{suffix}.{extension}", suffix + 1
        names.append(candidate)
    return names


def object_key(tenant: str, request_id: str, job_id: str, name: str) -> str:
    """Deterministic: a job rendered twice overwrites its own files instead of adding new ones."""
    return f"{tenant}/{request_id}/{job_id}/{name}"


def job_prefix(tenant: str, request_id: str, job_id: str) -> str:
    return f"{tenant}/{request_id}/{job_id}/"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
