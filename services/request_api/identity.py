"""Who is calling: a verified bearer JWT, or the headers of a trusted gateway (``api.auth_mode``)."""

from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import Header, HTTPException, Request

from exporter.domain.access import Principal
from exporter.settings import ApiSettings, Settings

MISSING_IDENTITY = "Missing user identity id"
BEARER = "bearer "


def _principal_from_token(token: str, settings: ApiSettings) -> Principal:
    key = (
        settings.jwt_public_key
        if settings.jwt_algorithm == "RS256"
        else settings.jwt_secret.get_secret_value()
        if settings.jwt_secret
        else None
    )
    if not key:
        raise HTTPException(status_code=500, detail="JWT verification is not configured")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            options={"require": ["sub", "exp"]},
            audience=settings.jwt_audience,
            leeway=5,
        )
    except jwt.PyJWTError as error:
        raise HTTPException(
            status_code=401, detail=f"Invalid bearer token: {error}", headers={"WWW-Authenticate": "Bearer"}
        ) from error
    subject = str(claims.get("sub") or "").strip()
    if not subject:
        raise HTTPException(status_code=400, detail=MISSING_IDENTITY)
    roles = claims.get("roles") or []
    if not isinstance(roles, list):
        raise HTTPException(status_code=401, detail="Invalid bearer token: 'roles' must be a list")
    tenant = str(claims.get("tenant") or settings.default_tenant)
    return Principal(user=subject, tenant=tenant, roles=frozenset(str(role) for role in roles))


async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_user_id: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header()] = None,
    x_user_roles: Annotated[str | None, Header()] = None,
) -> Principal:
    settings: Settings = request.app.state.settings
    if settings.api.auth_mode == "jwt":
        if not authorization:
            raise HTTPException(status_code=400, detail=MISSING_IDENTITY)
        if not authorization.lower().startswith(BEARER):
            raise HTTPException(
                status_code=401,
                detail="Authorization must be 'Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return _principal_from_token(authorization[len(BEARER) :].strip(), settings.api)
    # Trusted gateway mode: the gateway authenticated the caller and names them in headers.
    if not x_user_id or not x_user_id.strip():
        raise HTTPException(status_code=400, detail=MISSING_IDENTITY)
    roles = frozenset(role.strip() for role in (x_user_roles or "").split(",") if role.strip())
    return Principal(
        user=x_user_id.strip(), tenant=(x_tenant_id or settings.api.default_tenant).strip(), roles=roles
    )
