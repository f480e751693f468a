"""The console's identity and CSRF, before any data is read (no servers: the routes refuse or
redirect before the runtime is needed)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from pydantic import SecretStr

from exporter.settings import ApiSettings, Settings
from request_api.app import create_app
from request_api.console import session

SECRET = "a-console-test-secret-of-32-bytes!!"
JWT = Settings(api=ApiSettings(auth_mode="jwt", jwt_secret=SecretStr(SECRET)))


async def client_for(settings: Settings) -> httpx.AsyncClient:
    """Over https: the console's cookies are Secure with tokens, and a client keeps them only so."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)), base_url="https://api")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(Settings()) as client:
        yield client


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    assert client.cookies[session.CSRF] == token.group(1)
    return token.group(1)


async def test_without_an_identity_every_page_leads_to_the_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/console/exports", "/console/exports/new", "/console/jobs/j1/row"):
        answer = await client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/console/login")


async def test_sign_in_keeps_the_ids_in_a_strict_httponly_signed_cookie(client: httpx.AsyncClient) -> None:
    form = {"csrf": await csrf_of(client), "user": "alice", "tenant": "acme"}
    answer = await client.post("/console/login", data=form)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert (await client.get("/console/exports/new")).status_code == 200


async def test_a_forged_or_tampered_identity_cookie_is_not_an_identity(client: httpx.AsyncClient) -> None:
    form = {"csrf": await csrf_of(client), "user": "alice", "tenant": "acme"}
    await client.post("/console/login", data=form)
    body, _, tag = client.cookies[session.SESSION].rpartition(".")
    client.cookies.set(session.SESSION, f"{body[:-2]}xx.{tag}", path="/console")
    assert (await client.get("/console/exports/new")).status_code == 303


async def test_a_signed_identity_older_than_a_session_is_not_an_identity(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = {"csrf": await csrf_of(client), "user": "alice", "tenant": "acme"}
    await client.post("/console/login", data=form)
    later = time.time() + session.SESSION_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert (await client.get("/console/exports/new")).status_code == 303


async def test_without_the_gateways_secret_the_console_is_refused_not_redirected() -> None:
    async with await client_for(Settings(api=ApiSettings(gateway_secret=SecretStr("s" * 32)))) as client:
        answer = await client.get("/console/exports", headers={"X-User-Id": "alice"})
        assert answer.status_code == 401


async def test_ids_the_api_would_refuse_are_refused_at_sign_in(client: httpx.AsyncClient) -> None:
    form = {"csrf": await csrf_of(client), "user": "al ice", "tenant": "acme"}
    answer = await client.post("/console/login", data=form)
    assert answer.status_code == 400
    assert "X-User-Id: must be 1 to 200 characters" in answer.text
    assert session.SESSION not in answer.cookies


@pytest.mark.parametrize("sent", [None, "", "x" * 43])
async def test_a_form_without_the_pages_csrf_token_is_refused(
    client: httpx.AsyncClient, sent: str | None
) -> None:
    await csrf_of(client)
    form = {"user": "alice"} | ({} if sent is None else {"csrf": sent})
    answer = await client.post("/console/login", data=form)
    assert answer.status_code == 403
    assert session.SESSION not in answer.cookies


async def test_a_form_of_more_fields_than_any_console_form_is_refused(client: httpx.AsyncClient) -> None:
    form = {"csrf": await csrf_of(client)} | {f"f{index}": "" for index in range(1000)}
    assert (await client.post("/console/login", data=form)).status_code == 400


async def test_with_tokens_a_bad_token_is_no_identity_and_a_good_one_is() -> None:
    good = jwt.encode({"sub": "alice", "tenant": "acme", "exp": int(time.time()) + 60}, SECRET, "HS256")
    async with await client_for(JWT) as client:
        for token, status in (("not-a-token", 303), (good, 200)):
            client.cookies.clear()
            answer = await client.post("/console/login", data={"csrf": await csrf_of(client), "token": token})
            assert "Secure" in answer.headers["set-cookie"]
            assert (await client.get("/console/exports/new")).status_code == status
