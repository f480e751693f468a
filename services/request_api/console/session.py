"""Who uses the console, and that a form was sent by the console itself.

The identity is the API's: in header mode the same ids a gateway (or a developer) would send,
kept in a signed cookie after ``/console/login`` (or the gateway's own headers, when it sends
them); in jwt mode a bearer token kept in a cookie and verified by ``Identity.from_token`` on
every request. Cookies are HttpOnly and SameSite=Strict, so another site can neither read nor
send them; every state-changing form also carries the CSRF cookie's value (double submit)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from fastapi import HTTPException, Request, Response
from starlette.datastructures import Headers

from exporter.domain.access import Principal
from request_api.identity import BEARER, Identity

SESSION = "exporter_console"
CSRF = "exporter_console_csrf"
CSRF_FIELD = "csrf"
MAX_COOKIE = 4096
SESSION_SECONDS = 12 * 3600


class SignInNeeded(Exception):
    """No usable identity: the console sends the browser to its sign-in page."""


def signing_key(request: Request) -> bytes:
    """Per process unless a gateway secret is set (then shared by every worker behind it)."""
    app = request.app
    if not hasattr(app.state, "console_key"):
        secret = app.state.settings.api.gateway_secret
        app.state.console_key = (
            hashlib.sha256(b"exporter-console\0" + secret.get_secret_value().encode()).digest()
            if secret
            else secrets.token_bytes(32)
        )
    key: bytes = app.state.console_key
    return key


def _sign(key: bytes, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    tag = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{tag}"


def _unsigned(key: bytes, cookie: str) -> dict[str, Any] | None:
    body, _, tag = cookie.rpartition(".")
    expected = hmac.new(key, body.encode(), "sha256").hexdigest()
    if len(cookie) > MAX_COOKIE or not hmac.compare_digest(tag, expected):
        return None
    payload = json.loads(base64.urlsafe_b64decode(body))
    return payload if isinstance(payload, dict) else None


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or request.app.state.identity.tokens,
    )


def sign_in(response: Response, request: Request, form: dict[str, str]) -> None:
    """Keeps what the form named, once the API's identity accepts it (else HTTPException)."""
    identity: Identity = request.app.state.identity
    if identity.tokens:
        token = form.get("token", "").strip()
        if len(token) > MAX_COOKIE - 100:
            raise HTTPException(status_code=400, detail="The token is too long")
        set_cookie(response, request, SESSION, token, SESSION_SECONDS)
        return
    ids = {"x-user-id": form.get("user", ""), "x-tenant-id": form.get("tenant", "")}
    ids["x-user-roles"] = form.get("roles", "")
    identity.from_headers(Headers(ids))
    signed = _sign(signing_key(request), {**ids, "signedAt": int(time.time())})
    set_cookie(response, request, SESSION, signed, SESSION_SECONDS)


async def console_principal(request: Request) -> Principal:
    """The caller, exactly as the API would tell it from the same credentials."""
    identity: Identity = request.app.state.identity
    identity.check_gateway(request.headers)
    cookie = request.cookies.get(SESSION)
    if identity.tokens:
        if not cookie:
            raise SignInNeeded
        return await identity.from_token(BEARER + cookie)
    if request.headers.get("x-user-id"):  # a gateway names the caller itself
        return identity.from_headers(request.headers)
    ids = _unsigned(signing_key(request), cookie) if cookie else None
    # The cookie's own lifetime is the browser's word; the signed time is ours.
    if ids is None or not 0 <= time.time() - int(ids.pop("signedAt", 0)) <= SESSION_SECONDS:
        raise SignInNeeded
    return identity.from_headers(Headers({str(k): str(v) for k, v in ids.items()}))


def csrf_token(request: Request) -> str:
    """The browser's CSRF token; a new one (set by ``keep_csrf``) when it has none."""
    token = request.cookies.get(CSRF)
    if token is None or len(token) != 43:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def keep_csrf(request: Request, response: Response) -> None:
    token = getattr(request.state, "new_csrf", None)
    if token is not None:
        set_cookie(response, request, CSRF, token)


def check_csrf(request: Request, form: dict[str, str]) -> None:
    """A state-changing form must carry the token only this site's pages know."""
    cookie = request.cookies.get(CSRF, "")
    sent = form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise HTTPException(status_code=403, detail="The form is stale or was not sent by the console")


def new_key() -> str:
    """An idempotency key per rendered form: a form sent twice makes one export."""
    return secrets.token_urlsafe(24)
