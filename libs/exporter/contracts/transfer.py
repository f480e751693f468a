"""A tenant's transfer locations (seed 004): where a run's files are pushed once it is done.

Three kinds, told apart by ``kind``: an S3-compatible bucket, an SFTP server and an HTTPS
endpoint taking a PUT. Every field is bounded here; whether a host may be reached at all (no
private or loopback address unless the settings allow it) is ``exporter.domain.transfers``.
Secrets (``secretKey``, ``password``, ``privateKey``, the headers' values) are written, never
read back: ``public_view`` shows ``***`` in their place.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, StringConstraints, TypeAdapter, model_validator

from exporter.contracts.base import WireModel

MAX_HEADERS = 10
SECRET_MASK = "***"  # noqa: S105

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Host = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-:\[\]]{1,253}$")]
Prefix = Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00-\x1f\\]*$")]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=16_384)]
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
# Headers the HTTP client sets itself, from the file: a location must not change them.
RESERVED_HEADERS = frozenset({"content-length", "content-type", "host", "transfer-encoding", "content-md5"})


def _header_names(headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header '{name[:100]}' may not be set")
        if len(value.get_secret_value()) > 4096 or any(c in value.get_secret_value() for c in "\r\n\x00"):
            raise ValueError(f"header '{name}': at most 4096 characters, on one line")
    return headers


class S3Location(WireModel):
    kind: Literal["s3"]
    # host[:port], or an https:// URL (http:// only where the settings allow private addresses).
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,50}$")] = "us-east-1"
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")]
    prefix: Prefix = ""
    access_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    secret_key: Secret


class SftpLocation(WireModel):
    kind: Literal["sftp"]
    host: Host
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    user: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    password: Secret | None = None
    private_key: Secret | None = None
    directory: Prefix = ""
    # The server's public key, as in known_hosts (``ssh-ed25519 AAAA…``): required, since a
    # first-use trust would hand the credentials to whoever answers first.
    known_host_key: Annotated[str, StringConstraints(pattern=r"^[a-z0-9\-@.]{3,60} [A-Za-z0-9+/=]{16,8192}$")]

    @model_validator(mode="after")
    def _one_credential(self) -> SftpLocation:
        if (self.password is None) == (self.private_key is None):
            raise ValueError("give either 'password' or 'privateKey'")
        return self


class HttpsLocation(WireModel):
    kind: Literal["https"]
    # Each file is PUT at this URL followed by its name.
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000)]
    headers: Annotated[dict[str, SecretStr], AfterValidator(_header_names), Field(max_length=MAX_HEADERS)] = (
        Field(default_factory=dict)
    )


Destination = Annotated[S3Location | SftpLocation | HttpsLocation, Field(discriminator="kind")]


class TransferLocationSpec(WireModel):
    """What a client sends to create or replace a transfer location."""

    name: Name
    destination: Destination


def secrets_of(destination: S3Location | SftpLocation | HttpsLocation) -> dict[str, str]:
    """The destination's secrets by field, for sealing at rest."""
    if isinstance(destination, S3Location):
        return {"secretKey": destination.secret_key.get_secret_value()}
    if isinstance(destination, SftpLocation):
        found = {"password": destination.password, "privateKey": destination.private_key}
        return {name: value.get_secret_value() for name, value in found.items() if value is not None}
    return {f"headers.{name}": value.get_secret_value() for name, value in destination.headers.items()}


def public_view(destination: S3Location | SftpLocation | HttpsLocation) -> dict[str, object]:
    """The destination as a client may read it back: every secret as ``***``."""
    view = destination.model_dump(mode="json", by_alias=True, exclude_none=True)
    for field in ("secretKey", "password", "privateKey"):
        if field in view:
            view[field] = SECRET_MASK
    if "headers" in view:
        view["headers"] = dict.fromkeys(view["headers"], SECRET_MASK)
    return view


def destination_from(view: dict[str, object], secrets: dict[str, str]) -> Destination:
    """A destination back from its ``public_view`` and its opened secrets."""
    whole: dict[str, object] = {k: v for k, v in view.items() if k != "headers"}
    headers: dict[str, str] = {}
    for field, value in secrets.items():
        if field.startswith("headers."):
            headers[field.removeprefix("headers.")] = value
        else:
            whole[field] = value
    if view.get("kind") == "https":
        whole["headers"] = headers
    return DESTINATION.validate_python(whole)


DESTINATION: TypeAdapter[Destination] = TypeAdapter(Destination)


def with_kept_secrets(secrets: dict[str, str], kept: dict[str, str]) -> dict[str, str]:
    """``secrets``, where one given as ``***`` keeps the ``kept`` one: a client may send back the
    location it read, changed only elsewhere. Raises ``ValueError`` for a ``***`` with none to keep."""
    merged = dict(secrets)
    for field, value in secrets.items():
        if value == SECRET_MASK:
            if field not in kept:
                raise ValueError(f"destination.{field}: give the secret ('***' keeps one only on a replace)")
            merged[field] = kept[field]
    return merged
