"""Who is calling: the user and tenant every request-api operation is scoped to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, HTTPException, Request

from exporter.settings import Settings

MISSING_IDENTITY = "Missing user identity id"


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    tenant: str


def identity_from_headers(
    request: Request,
    x_user_id: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header()] = None,
) -> Identity:
    """Behind a trusted gateway: the gateway has authenticated the caller and names them."""
    settings: Settings = request.app.state.settings
    if not x_user_id or not x_user_id.strip():
        raise HTTPException(status_code=400, detail=MISSING_IDENTITY)
    return Identity(user=x_user_id.strip(), tenant=(x_tenant_id or settings.api.default_tenant).strip())
