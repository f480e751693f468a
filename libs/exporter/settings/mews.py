"""Seed 003's Mews-style clients: which token pairs act as which user of which tenant. Part of the
one settings object (``Settings.mews``).

Tokens are kept as their SHA-256 (hex), never as themselves: a leaked configuration names no
credential. ``exporter.settings.mews.token_hash`` makes the value to configure."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

TokenHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# As identity.py bounds header and token identities: no whitespace, no control characters, and
# no "/" in a tenant (it starts object keys) or "," in a role.
_USER = r"^[^\s\x00-\x1f\x7f-\x9f]{1,200}$"
_TENANT = r"^[^\s/\x00-\x1f\x7f-\x9f]{1,100}$"
_ROLE = re.compile(r"^[^\s,\x00-\x1f\x7f-\x9f]{1,100}$")
MAX_CLIENTS = 1000


def token_hash(token: str) -> str:
    """What ``access_token_sha256``/``client_token_sha256`` hold for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


class MewsClientSettings(BaseModel):
    """One access token (a Mews "enterprise" connection) and the identity it stands for."""

    access_token_sha256: TokenHash
    # None: any ClientToken goes with this access token; set, only that one.
    client_token_sha256: TokenHash | None = None
    tenant: Annotated[str, Field(pattern=_TENANT)]
    user: Annotated[str, Field(pattern=_USER)]
    roles: Annotated[list[str], Field(max_length=50)] = Field(default_factory=list)

    @field_validator("roles")
    @classmethod
    def _bounded_roles(cls, roles: list[str]) -> list[str]:
        if bad := [role for role in roles if not _ROLE.match(role)]:
            raise ValueError(f"{len(bad)} role(s) empty, too long, or with whitespace, ',' or controls")
        return roles


class MewsSettings(BaseModel):
    # Each access token once: one token, one identity.
    clients: Annotated[list[MewsClientSettings], Field(max_length=MAX_CLIENTS)] = Field(default_factory=list)
    # How long a file's Url in exports/getAll stays valid. Mews clients list first and download
    # after, one file after another, so longer than the API's own 30 s links.
    link_ttl_seconds: int = Field(default=900, ge=1, le=7 * 24 * 3600)

    @field_validator("clients")
    @classmethod
    def _unique_tokens(cls, clients: list[MewsClientSettings]) -> list[MewsClientSettings]:
        hashes = [client.access_token_sha256 for client in clients]
        if len(set(hashes)) != len(hashes):
            raise ValueError("each access_token_sha256 may be configured once")
        return clients
