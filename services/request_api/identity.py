"""Who is calling: a verified bearer JWT, or the headers of a trusted gateway (``api.auth_mode``)."""

from __future__ import annotations

from typing import Any

import jwt
from fastapi import HTTPException, Request

from exporter.domain.access import Principal
from exporter.settings import ApiSettings, Settings

MISSING_IDENTITY = "Missing user identity id"
BEARER = "bearer "


def header_parameter(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """An optional string header as OpenAPI describes it, for headers a handler reads itself."""
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string", **schema},
        "description": description,
    }


# current_principal reads these headers itself, so OpenAPI learns of them from this list (each
# route's ``openapi_extra``) rather than from FastAPI Header parameters, which FastAPI would
# validate one by one on every call: a fifth of what a create cost.
IDENTITY_PARAMETERS = [
    header_parameter("Authorization", "'Bearer <JWT>' (api.auth_mode=jwt)"),
    header_parameter("X-User-Id", "The caller, named by a trusted gateway (api.auth_mode=gateway)"),
    header_parameter("X-Tenant-Id", "The caller's tenant (gateway mode; default api.default_tenant)"),
    header_parameter("X-User-Roles", "The caller's roles, comma-separated (gateway mode)"),
]


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


async def current_principal(request: Request) -> Principal:
    settings: Settings = request.app.state.settings
    headers = request.headers
    if settings.api.auth_mode == "jwt":
        authorization = headers.get("authorization")
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
    x_user_id, x_tenant_id = headers.get("x-user-id"), headers.get("x-tenant-id")
    if not x_user_id or not x_user_id.strip():
        raise HTTPException(status_code=400, detail=MISSING_IDENTITY)
    roles = frozenset(role.strip() for role in headers.get("x-user-roles", "").split(",") if role.strip())
    return Principal(
        user=x_user_id.strip(), tenant=(x_tenant_id or "").strip() or settings.api.default_tenant, roles=roles
    )
