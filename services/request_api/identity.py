"""Who is calling: a verified bearer JWT, or the headers of a trusted gateway (``api.auth_mode``)."""

from __future__ import annotations

import asyncio
import hmac
import math
import re
from typing import Any

import jwt
from fastapi import HTTPException, Request
from starlette.datastructures import Headers

from exporter.domain.access import Principal
from exporter.log_context import bind
from exporter.settings import ApiSettings, Settings

MISSING_IDENTITY = "Missing user identity id"
BEARER = "bearer "
# Ids travel into grants (``user:<id>``), events and object keys (``<tenant>/...``): bounded, and
# without whitespace, control characters, or a "/" in a tenant or a "," in a role.
_USER = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]{1,200}")
_TENANT = re.compile(r"[^\s/\x00-\x1f\x7f-\x9f]{1,100}")
_ROLE = re.compile(r"[^\s,\x00-\x1f\x7f-\x9f]{1,100}")
MAX_ROLES = 50
_REQUIRED_CLAIMS = ["sub", "exp", "tenant"]


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
# validate one by one on every call: a fifth of what a create cost. The caller's own credential
# (a bearer token, or X-User-Id) is OpenAPI's security scheme instead (``SECURITY_SCHEMES``).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "api.auth_mode=jwt (production's default): claims sub, tenant, exp, and roles",
    },
    "userHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-User-Id",
        "description": "api.auth_mode=header: the caller, named by a trusted gateway (or a developer)",
    },
}
IDENTITY_PARAMETERS = [
    header_parameter("X-Tenant-Id", "The caller's tenant (header mode; default api.default_tenant)"),
    header_parameter("X-User-Roles", "The caller's roles, comma-separated (header mode)"),
    header_parameter("X-Gateway-Secret", "The gateway's shared secret, when api.gateway_secret is set"),
]


def _id_problem(user: object, tenant: object, roles: list[Any], names: tuple[str, str, str]) -> str | None:
    """What is wrong with the caller's ids, naming the header or claim that carried it."""
    if not (isinstance(user, str) and _USER.fullmatch(user)):
        return f"{names[0]}: must be 1 to 200 characters without whitespace or control characters"
    if not (isinstance(tenant, str) and _TENANT.fullmatch(tenant)):
        return f"{names[1]}: must be 1 to 100 characters without whitespace, control characters or '/'"
    if len(roles) > MAX_ROLES or not all(isinstance(role, str) and _ROLE.fullmatch(role) for role in roles):
        return (
            f"{names[2]}: at most {MAX_ROLES} roles of 1 to 100 characters "
            "without whitespace, commas or control characters"
        )
    return None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


class Identity:
    """How this app tells who calls, set up once: the gateway's secret, and the key or the
    identity provider's key set that verifies tokens."""

    def __init__(self, settings: Settings) -> None:
        api = settings.api
        self._api = api
        self.tokens = api.auth_mode == "jwt"
        # The default tenant is a convenience of local runs, never a production identity.
        self._default_tenant = None if settings.environment == "production" else api.default_tenant
        self._gateway_secret = api.gateway_secret.get_secret_value().encode() if api.gateway_secret else None
        self._key_set, self._key = _token_keys(api) if self.tokens else (None, "")

    def check_gateway(self, headers: Headers) -> None:
        """With api.gateway_secret set, only the gateway (which sends it) may call."""
        if self._gateway_secret is None:
            return
        sent = headers.get("x-gateway-secret")
        if sent is None or not hmac.compare_digest(sent.encode("latin-1"), self._gateway_secret):
            raise HTTPException(status_code=401, detail="Missing or wrong X-Gateway-Secret")

    def from_headers(self, headers: Headers) -> Principal:
        """Header mode: the gateway authenticated the caller and names them."""
        user = (headers.get("x-user-id") or "").strip()
        if not user:
            raise HTTPException(status_code=400, detail=MISSING_IDENTITY)
        tenant = (headers.get("x-tenant-id") or "").strip() or self._default_tenant
        if tenant is None:
            raise HTTPException(status_code=400, detail="X-Tenant-Id: is required")
        roles = [role.strip() for role in headers.get("x-user-roles", "").split(",") if role.strip()]
        if problem := _id_problem(user, tenant, roles, ("X-User-Id", "X-Tenant-Id", "X-User-Roles")):
            raise HTTPException(status_code=400, detail=problem)
        return Principal(user=user, tenant=tenant, roles=frozenset(roles))

    async def from_token(self, authorization: str | None) -> Principal:
        """JWT mode: a bearer token signed by the configured key, or by one of the key set's.
        Without one, 401 and a challenge (RFC 6750 §3.1), as the bearer scheme documents it."""
        if not authorization:
            raise _unauthorized(MISSING_IDENTITY)
        if not authorization.lower().startswith(BEARER):
            raise _unauthorized("Authorization must be 'Bearer <token>'")
        token = authorization[len(BEARER) :].strip()
        api = self._api
        try:
            # The key set is fetched over HTTP, so off the event loop; PyJWKClient caches it
            # and refreshes it once for a key id it does not know (a rotation).
            key_set = self._key_set
            key: str | jwt.PyJWK = self._key
            if key_set is not None:
                key = await asyncio.to_thread(key_set.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key,
                algorithms=[api.jwt_algorithm],
                options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
                audience=api.jwt_audience,
                issuer=api.jwt_issuer,
                leeway=5,
            )
        except jwt.PyJWKClientConnectionError as error:
            # Worth a retry once the key set may be fetched again (a cooldown, at least a second).
            retry_after = str(max(1, math.ceil(api.jwt_jwks_cooldown_seconds)))
            raise HTTPException(
                status_code=503,
                detail="The token signing keys cannot be fetched",
                headers={"Retry-After": retry_after},
            ) from error
        except jwt.PyJWTError as error:
            raise _unauthorized(f"Invalid bearer token: {error}") from error
        roles = claims.get("roles") or []
        if not isinstance(roles, list):
            raise _unauthorized("Invalid bearer token: 'roles' must be a list")
        user, tenant = claims["sub"], claims["tenant"]
        if problem := _id_problem(user, tenant, roles, ("'sub' claim", "'tenant' claim", "'roles' claim")):
            raise _unauthorized(f"Invalid bearer token: {problem}")
        return Principal(user=user, tenant=tenant, roles=frozenset(roles))


def _token_keys(api: ApiSettings) -> tuple[jwt.PyJWKClient | None, str]:
    """The identity provider's key set, or the one key, that verifies tokens: a jwt mode that
    could verify none refuses to start rather than answer every request with a 500."""
    if api.jwt_algorithm == "HS256":
        if api.jwt_secret is None or api.jwt_jwks_url:
            raise ValueError("api.jwt_algorithm HS256 needs api.jwt_secret (key sets are RS256 or ES256)")
        return None, api.jwt_secret.get_secret_value()
    if api.jwt_jwks_url:
        key_set = jwt.PyJWKClient(
            api.jwt_jwks_url,
            lifespan=api.jwt_jwks_lifespan_seconds,
            cooldown_duration=api.jwt_jwks_cooldown_seconds,
            timeout=10,
        )
        return key_set, ""
    if not api.jwt_public_key:
        needed = "api.jwt_public_key or api.jwt_jwks_url"
        raise ValueError(f"api.jwt_algorithm {api.jwt_algorithm} needs {needed}")
    return None, api.jwt_public_key


async def current_principal(request: Request) -> Principal:
    """Runs on every request: header mode stays synchronous (no await) to keep it cheap."""
    identity: Identity = request.app.state.identity
    headers = request.headers
    identity.check_gateway(headers)
    if identity.tokens:
        principal = await identity.from_token(headers.get("authorization"))
    else:
        principal = identity.from_headers(headers)
    bind(tenant=principal.tenant)
    return principal
