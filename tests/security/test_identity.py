"""Who the request-api believes a caller is: tokens, the gateway's secret and the ids they carry,
each tried over real HTTP; and the settings production refuses to start with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import SecretStr, ValidationError
from pytest_httpserver import HTTPServer

from exporter.settings import Settings
from request_api.app import create_app
from tests.integration.api_server import isolated, serving
from tests.request_cases import SEED_000

pytestmark = pytest.mark.servers

SECRET = "a-test-secret-that-is-32-bytes-or-more"
ISSUER = "https://idp.example"
AUDIENCE = "exporter"
GATEWAY_SECRET = "the-gateway-secret-of-32-bytes-or-more"


def claims(**changes: Any) -> dict[str, Any]:
    """Some tokens are made when the module is collected: an hour outlives the whole suite."""
    now = int(time.time())
    base = {"sub": "dave", "tenant": "acme", "exp": now + 3600, "iss": ISSUER, "aud": AUDIENCE}
    return {name: value for name, value in (base | changes).items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], sign: bytes | None) -> str:
    """A token PyJWT itself would refuse to make: alg none, or HS256 keyed with a public key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b"" if sign is None else hmac.new(sign, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def hs256_url(servers: Settings) -> AsyncIterator[str]:
    settings = isolated(
        servers,
        auth_mode="jwt",
        jwt_secret=SecretStr(SECRET),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    async with serving(settings) as url:
        yield url


REFUSED_HS256 = {
    "alg none": handmade({"alg": "none", "typ": "JWT"}, claims(), None),
    "other secret": jwt.encode(claims(), "another-secret-that-is-32-bytes-long", algorithm="HS256"),
    "expired": jwt.encode(claims(exp=int(time.time()) - 60), SECRET, algorithm="HS256"),
    "wrong issuer": jwt.encode(claims(iss="https://evil.example"), SECRET, algorithm="HS256"),
    "no issuer": jwt.encode(claims(iss=None), SECRET, algorithm="HS256"),
    "wrong audience": jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"),
    "no tenant": jwt.encode(claims(tenant=None), SECRET, algorithm="HS256"),
    "no subject": jwt.encode(claims(sub=None), SECRET, algorithm="HS256"),
    "tenant with a slash": jwt.encode(claims(tenant="acme/other"), SECRET, algorithm="HS256"),
    "control character in sub": jwt.encode(claims(sub="dave\u0000"), SECRET, algorithm="HS256"),
    "too many roles": jwt.encode(claims(roles=[f"r{n}" for n in range(51)]), SECRET, algorithm="HS256"),
}
# The claim or check each refusal names.
NAMED = {
    "alg none": "alg",
    "other secret": "Signature verification failed",
    "expired": "expired",
    "wrong issuer": "issuer",
    "no issuer": '"iss"',
    "wrong audience": "Audience",
    "no tenant": '"tenant"',
    "no subject": '"sub"',
    "tenant with a slash": "'tenant' claim",
    "control character in sub": "'sub' claim",
    "too many roles": "'roles' claim",
}


@pytest.mark.parametrize("case", list(REFUSED_HS256))
async def test_bad_tokens_are_401_naming_the_reason(hs256_url: str, case: str) -> None:
    async with httpx.AsyncClient(base_url=hs256_url, headers=bearer(REFUSED_HS256[case])) as api:
        for answer in (await api.get("/exports"), await api.post("/exports", json=SEED_000)):
            assert answer.status_code == 401, answer.text
            message = answer.json()["message"]
            assert message.startswith("Invalid bearer token: "), message
            assert NAMED[case] in message, message


async def test_a_good_token_names_user_tenant_and_roles(hs256_url: str) -> None:
    token = jwt.encode(claims(tenant="initech", roles=["auditor"]), SECRET, algorithm="HS256")
    async with httpx.AsyncClient(base_url=hs256_url, headers=bearer(token)) as api:
        created = await api.post("/exports", json=SEED_000)
        assert created.status_code == 201, created.text
        assert (created.json()["owner"], created.json()["tenant"]) == ("dave", "initech")


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def test_hs256_signed_with_the_rsa_public_key_is_refused(servers: Settings) -> None:
    """Algorithm confusion: a server that verifies RS256 with a public key must not take that
    public key as an HMAC secret for a token that says HS256."""
    key = rsa_key()
    pem = public_pem(key)
    settings = isolated(servers, auth_mode="jwt", jwt_algorithm="RS256", jwt_public_key=pem.decode())
    confused = handmade({"alg": "HS256", "typ": "JWT"}, claims(iss=None, aud=None), pem)
    genuine = jwt.encode(claims(iss=None, aud=None), key, algorithm="RS256")
    async with serving(settings) as url, httpx.AsyncClient(base_url=url) as api:
        refused = await api.get("/exports", headers=bearer(confused))
        assert refused.status_code == 401
        assert "alg" in refused.json()["message"]
        assert (await api.get("/exports", headers=bearer(genuine))).status_code == 200


# -- keys from the identity provider's JWKS, rotated -------------------------------------------------


def jwk(public: Any, kid: str, algorithm: type[RSAAlgorithm] | type[ECAlgorithm], alg: str) -> dict[str, Any]:
    return {**algorithm.to_jwk(public, as_dict=True), "kid": kid, "use": "sig", "alg": alg}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_jwks_keys_rotate(servers: Settings, httpserver: HTTPServer, alg: str) -> None:
    def new_key() -> Any:
        return rsa_key() if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())

    algorithm = RSAAlgorithm if alg == "RS256" else ECAlgorithm
    old, new = new_key(), new_key()
    jwks_url = httpserver.url_for("/jwks.json")
    settings = isolated(
        servers, auth_mode="jwt", jwt_algorithm=alg, jwt_jwks_url=jwks_url, jwt_jwks_cooldown_seconds=0.0
    )

    def token(key: Any, kid: str) -> dict[str, str]:
        return bearer(jwt.encode(claims(iss=None, aud=None), key, algorithm=alg, headers={"kid": kid}))

    def publish(*keys: tuple[Any, str]) -> None:
        httpserver.clear()
        document = {"keys": [jwk(key.public_key(), kid, algorithm, alg) for key, kid in keys]}
        httpserver.expect_request("/jwks.json").respond_with_json(document)

    publish((old, "k1"))
    async with serving(settings) as url, httpx.AsyncClient(base_url=url) as api:
        for _ in range(3):
            assert (await api.get("/exports", headers=token(old, "k1"))).status_code == 200
        assert len(httpserver.log) == 1  # the key set is fetched once, then cached
        # The provider rotates: the new kid is unknown, so the key set is fetched again.
        publish((new, "k2"))
        assert (await api.get("/exports", headers=token(new, "k2"))).status_code == 200
        assert len(httpserver.log) == 1
        # The retired key is gone from the refreshed set.
        retired = await api.get("/exports", headers=token(old, "k1"))
        assert retired.status_code == 401
        assert "k1" in retired.json()["message"]
        # A token signed by a stranger with a known kid fails its signature.
        forged = await api.get("/exports", headers=token(new_key(), "k2"))
        assert forged.status_code == 401


async def test_an_unreachable_key_set_is_503_with_retry_after(
    servers: Settings, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/jwks.json").respond_with_data("down", status=502)
    settings = isolated(
        servers,
        auth_mode="jwt",
        jwt_algorithm="RS256",
        jwt_jwks_url=httpserver.url_for("/jwks.json"),
        jwt_jwks_cooldown_seconds=12.5,
    )
    signed = jwt.encode(claims(iss=None, aud=None), rsa_key(), algorithm="RS256", headers={"kid": "k1"})
    token = bearer(signed)
    async with serving(settings) as url, httpx.AsyncClient(base_url=url) as api:
        answer = await api.get("/exports", headers=token)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "13"
    assert answer.json() == {"message": "The token signing keys cannot be fetched"}


# -- the gateway's shared secret, and header mode ----------------------------------------------------


def identified(**headers: bytes) -> dict[bytes, bytes]:
    """Header mode's identity headers, as bytes: some tests send bytes beyond ASCII."""
    return {b"X-User-Id": b"erin", b"X-Tenant-Id": b"acme"} | {k.encode(): v for k, v in headers.items()}


@pytest.mark.parametrize("mode", ["header", "jwt"])
async def test_the_gateway_secret_is_required_once_configured(servers: Settings, mode: str) -> None:
    settings = isolated(
        servers, auth_mode=mode, jwt_secret=SecretStr(SECRET), gateway_secret=SecretStr(GATEWAY_SECRET)
    )
    token = jwt.encode(claims(iss=None, aud=None), SECRET, algorithm="HS256")
    caller = identified() if mode == "header" else bearer(token)
    async with serving(settings) as url, httpx.AsyncClient(base_url=url, headers=caller) as api:
        for sent in (None, "", "wrong", GATEWAY_SECRET[:-1], GATEWAY_SECRET + "x"):
            headers = {} if sent is None else {"X-Gateway-Secret": sent}
            refused = await api.get("/exports", headers=headers)
            assert refused.status_code == 401, sent
            assert refused.json() == {"message": "Missing or wrong X-Gateway-Secret"}
        passed = await api.get("/exports", headers={"X-Gateway-Secret": GATEWAY_SECRET})
        assert passed.status_code == 200


# Header bytes beyond ASCII arrive as Latin-1: a C1 control character and a no-break space.
BAD_HEADERS: dict[str, tuple[bytes, ...]] = {
    "X-User-Id": (b"u" * 201, b"x\x85y"),
    "X-Tenant-Id": (b"t" * 101, b"acme/other", b"ac\xa0me"),
    "X-User-Roles": (",".join(f"r{n}" for n in range(51)).encode(), b"r" * 101),
}


async def test_header_ids_are_bounded(servers: Settings) -> None:
    async with serving(isolated(servers)) as url, httpx.AsyncClient(base_url=url) as api:
        for name, values in BAD_HEADERS.items():
            for value in values:
                answer = await api.get("/exports", headers=identified(**{name: value}))
                assert answer.status_code == 400, (name, value)
                assert answer.json()["message"].startswith(f"{name}: "), answer.text
        # Outside production a request without a tenant lands in the default one.
        created = await api.post("/exports", json=SEED_000, headers={"X-User-Id": "erin"})
        assert created.json()["tenant"] == "default"


async def test_production_has_no_default_tenant(servers: Settings) -> None:
    settings = isolated(servers, gateway_secret=SecretStr(GATEWAY_SECRET))
    production = settings.model_copy(update={"environment": "production"})
    gateway = {"X-Gateway-Secret": GATEWAY_SECRET}
    async with serving(production) as url, httpx.AsyncClient(base_url=url, headers=gateway) as api:
        missing = await api.get("/exports", headers={"X-User-Id": "erin"})
        assert missing.status_code == 400
        assert missing.json() == {"message": "X-Tenant-Id: is required"}
        assert (await api.get("/exports", headers=identified())).status_code == 200


# -- what production refuses to start with -------------------------------------------------------------

SAFE: dict[str, Any] = {
    "environment": "production",
    "storage": {"secret_key": "a-storage-secret-nobody-else-knows"},
    "kafka": {"signing_secret": "a-signing-secret-nobody-else-knows"},
    "api": {"auth_mode": "jwt", "jwt_secret": SECRET},
    "transfer": {"sealing_key": "a-sealing-key-nobody-else-knows-at-all"},
}


def production(**api: Any) -> dict[str, Any]:
    return {**SAFE, "api": api}


UNSAFE: dict[str, tuple[dict[str, Any], str]] = {
    "header mode without a gateway secret": (production(auth_mode="header"), "api.gateway_secret"),
    "short gateway secret": (
        production(auth_mode="header", gateway_secret="short"),
        "api.gateway_secret is shorter than 32 bytes",
    ),
    "short JWT secret": (production(auth_mode="jwt", jwt_secret="short"), "api.jwt_secret is shorter"),
    "local storage key": ({**SAFE, "storage": {}}, "storage.secret_key is the local default"),
    "key set over plain HTTP": (
        production(auth_mode="jwt", jwt_algorithm="RS256", jwt_jwks_url="http://idp.example/jwks"),
        "api.jwt_jwks_url must be https",
    ),
}


@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the values given alone, not from the session's EXPORTER_* variables."""
    for name in list(os.environ):
        if name.upper().startswith("EXPORTER_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_environment")
@pytest.mark.parametrize("case", list(UNSAFE))
def test_production_refuses_to_start_unsafe(case: str) -> None:
    values, words = UNSAFE[case]
    with pytest.raises(ValidationError, match="unsafe in production") as refused:
        Settings(**values)
    assert words in str(refused.value)


@pytest.mark.usefixtures("no_environment")
def test_production_defaults_to_tokens_and_allows_a_gateway() -> None:
    assert Settings(**SAFE).api.auth_mode == "jwt"
    assert Settings(**{**SAFE, "api": {}}).api.auth_mode == "jwt"
    gateway = Settings(**production(auth_mode="header", gateway_secret=GATEWAY_SECRET))
    assert gateway.api.auth_mode == "header"
    # Anywhere else, the local defaults stand.
    assert Settings().api.auth_mode == "header"


def test_a_jwt_mode_that_can_verify_nothing_refuses_to_start(servers: Settings) -> None:
    for api in (
        {"auth_mode": "jwt"},
        {"auth_mode": "jwt", "jwt_algorithm": "RS256"},
        {"auth_mode": "jwt", "jwt_secret": SecretStr(SECRET), "jwt_jwks_url": "https://idp.example/jwks"},
    ):
        with pytest.raises(ValueError, match=r"needs api\.jwt_"):
            create_app(isolated(servers, **api))
