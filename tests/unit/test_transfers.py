"""Transfer locations' rules without servers: what may be reached, what a location may hold, how
its secrets are sealed and shown, and seed 004's transfer fields of a job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import SecretStr, ValidationError

from exporter.adapters.transfer.reach import Refusal, form_problem, reach_refusal
from exporter.adapters.transfer.sealing import Sealer
from exporter.contracts.job import FileTransfer, Job
from exporter.contracts.request import ExportRequestSpec
from exporter.contracts.transfer import (
    DESTINATION,
    MAX_HEADERS,
    TransferLocationSpec,
    destination_from,
    public_view,
    secrets_of,
    with_kept_secrets,
)
from exporter.domain.access import Action, update_actions
from exporter.domain.transfers import (
    TransferStatus,
    address_problem,
    object_name,
    transfer_fields,
    url_problem,
)
from exporter.settings import Settings
from tests.notify_cases import request_body

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
S3: dict[str, Any] = {
    "kind": "s3",
    "endpoint": "https://s3.example.com",
    "bucket": "their-bucket",
    "prefix": "exports/",
    "accessKey": "AKIA1",
    "secretKey": "s3-secret-value",
}
SFTP: dict[str, Any] = {
    "kind": "sftp",
    "host": "sftp.example.com",
    "user": "drop",
    "password": "sftp-password-value",
    "knownHostKey": HOST_KEY,
}
HTTPS: dict[str, Any] = {
    "kind": "https",
    "url": "https://receiver.example.com/in",
    "headers": {"Authorization": "Bearer https-token-value"},
}


@pytest.mark.parametrize(
    "address",
    [
        *("127.0.0.1", "10.1.2.3", "192.168.0.9", "172.16.0.1", "169.254.169.254"),
        *("::1", "fe80::1", "0.0.0.0", "fd00::1"),
    ],
)
def test_internal_addresses_are_refused_unless_allowed(address: str) -> None:
    assert address_problem("h", [address], allow_private=False) is not None
    assert address_problem("h", [address], allow_private=True) is None


def test_a_host_with_one_internal_address_among_public_ones_is_refused() -> None:
    assert address_problem("h", ["93.184.216.34"], allow_private=False) is None
    assert address_problem("h", ["93.184.216.34", "10.0.0.1"], allow_private=False) is not None
    assert address_problem("h", [], allow_private=True) == "host 'h' does not resolve"


def test_only_https_urls_without_credentials_unless_allowed() -> None:
    assert url_problem("https://example.com/x", allow_private=False) is None
    assert url_problem("http://example.com/x", allow_private=False) == "must be an https URL"
    assert url_problem("http://example.com/x", allow_private=True) is None
    assert url_problem("https://user:pw@example.com/", allow_private=False) is not None
    assert url_problem("file:///etc/passwd", allow_private=True) is not None
    s3 = DESTINATION.validate_python({**S3, "endpoint": "http://s3.example.com"})
    assert form_problem(s3, allow_private=False) == "must be an https URL"
    with_path = DESTINATION.validate_python({**S3, "endpoint": "https://s3.example.com/x"})
    assert form_problem(with_path, allow_private=False) == "must be host[:port] or a URL without a path"


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ({**SFTP, "knownHostKey": None}, "knownHostKey"),  # no trust on first use
        ({**SFTP, "password": None}, "either 'password' or 'privateKey'"),
        ({**SFTP, "privateKey": "k"}, "either 'password' or 'privateKey'"),
        ({**SFTP, "port": 70000}, "port"),
        ({**S3, "bucket": "Not_A_Bucket"}, "bucket"),
        ({**S3, "secretKey": "x" * 16_385}, "secretKey"),
        ({**S3, "prefix": "a" * 501}, "prefix"),
        ({**HTTPS, "headers": {"Host": "internal"}}, "may not be set"),
        ({**HTTPS, "headers": {"X-A": "one\r\nX-B: two"}}, "on one line"),
        ({**HTTPS, "headers": {f"X-{i}": "v" for i in range(MAX_HEADERS + 1)}}, "headers"),
        ({**HTTPS, "url": "h" * 2001}, "url"),
        ({**HTTPS, "kind": "ftp"}, "kind"),
    ],
)
def test_each_bound_refuses_its_worst_value(destination: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        TransferLocationSpec.model_validate({"name": "x", "destination": destination})
    with pytest.raises(ValidationError, match="name"):
        TransferLocationSpec.model_validate({"name": "n" * 201, "destination": S3})


@pytest.mark.parametrize("raw", [S3, SFTP, HTTPS])
def test_secrets_are_masked_in_views_and_come_back_whole(raw: dict[str, Any]) -> None:
    destination = DESTINATION.validate_python(raw)
    view = public_view(destination)
    assert "value" not in str(view)
    assert "***" in str(view)
    assert destination_from(view, secrets_of(destination)) == destination


def test_sealed_secrets_open_only_for_their_tenant_and_location() -> None:
    sealer = Sealer(SecretStr("k" * 32))
    sealed = sealer.seal({"secretKey": "s3-secret-value"}, "acme", "tl-1")
    assert "s3-secret-value" not in sealed
    assert sealer.open(sealed, "acme", "tl-1") == {"secretKey": "s3-secret-value"}
    for tenant, location in (("globex", "tl-1"), ("acme", "tl-2")):
        with pytest.raises(InvalidTag):
            sealer.open(sealed, tenant, location)
    with pytest.raises(InvalidTag):
        Sealer(SecretStr("j" * 32)).open(sealed, "acme", "tl-1")


def test_production_refuses_the_local_sealing_key_and_private_addresses() -> None:
    production: dict[str, Any] = {
        "environment": "production",
        "api": {"auth_mode": "jwt", "jwt_secret": "j" * 32},
        "storage": {"secret_key": "s" * 32},
        "kafka": {"signing_secret": "k" * 32},
    }
    with pytest.raises(ValidationError, match=r"transfer\.sealing_key is the local default"):
        Settings(**production)
    with pytest.raises(ValidationError, match="allow_private_addresses"):
        Settings(**production, transfer={"sealing_key": "t" * 32, "allow_private_addresses": True})
    with pytest.raises(ValidationError, match="sealing_key"):
        Settings(transfer={"sealing_key": "t" * 31})
    assert Settings(**production, transfer={"sealing_key": "t" * 32}).transfer.sealing_key


def test_object_names_are_deterministic() -> None:
    assert object_name("/exports/acme/", "run.csv") == "exports/acme/run.csv"
    assert object_name("", "run.csv") == "run.csv"


def test_transfer_fields_name_the_location_and_the_log() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = Job(
        id="r1-20260101T000000000Z",
        request_id="r1",
        tenant="acme",
        owner="alice",
        scheduled_at=now,
        status="done",
        created_at=now,
        spec={"request": {"transferLocationId": "tl-1"}},
    )
    assert transfer_fields(job) == ("tl-1", None, None)
    entry = FileTransfer(index=0, name="a.csv", key="k", status=TransferStatus.DONE, attempts=1)
    planned = job.model_copy(
        update={"transfer_location_id": "tl-1", "transfer_location_name": "Drop", "transfers": [entry]}
    )
    assert transfer_fields(planned) == ("tl-1", "Drop", job.id)
    assert transfer_fields(job.model_copy(update={"spec": None})) == (None, None, None)


def test_changing_a_requests_transfer_location_needs_the_notify_action() -> None:
    """Whoever may edit a request must not send its files to a location of their choosing."""
    current = ExportRequestSpec.model_validate(request_body([], "Plant temperatures"))
    named = current.model_copy(update={"transfer_location_id": "tl-1"})
    assert update_actions(current, current) == [Action.UPDATE]
    assert update_actions(current, named) == [Action.UPDATE, Action.NOTIFY]
    assert update_actions(named, named.model_copy(update={"transfer_location_id": "tl-2"})) == [
        Action.UPDATE,
        Action.NOTIFY,
    ]


async def test_a_host_that_does_not_resolve_is_refused_for_now_an_internal_one_for_good() -> None:
    """A push whose host did not resolve is tried again (DNS may come back); never pushed to an
    internal address. ``.invalid`` never resolves (RFC 6761)."""
    unresolved = DESTINATION.validate_python({**HTTPS, "url": "https://no-such-host.invalid/in"})
    assert await reach_refusal(unresolved, allow_private=False) == Refusal(
        "host 'no-such-host.invalid' does not resolve", lasting=False
    )
    internal = DESTINATION.validate_python({**HTTPS, "url": "https://127.0.0.1/in"})
    refusal = await reach_refusal(internal, allow_private=False)
    assert refusal is not None
    assert refusal.lasting
    assert await reach_refusal(internal, allow_private=True) is None


def test_a_masked_secret_keeps_the_current_one_and_only_on_a_replace() -> None:
    given = {"headers.Authorization": "***", "headers.X-Key": "new"}
    kept = {"headers.Authorization": "Bearer old", "headers.X-Key": "old"}
    assert with_kept_secrets(given, kept) == {"headers.Authorization": "Bearer old", "headers.X-Key": "new"}
    with pytest.raises(ValueError, match=r"destination\.headers\.Authorization: give the secret"):
        with_kept_secrets(given, {})
