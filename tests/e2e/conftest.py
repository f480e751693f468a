"""The five services as real child processes against the session's local servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.local.services import LocalServices
from exporter.settings import Settings
from exporter.settings.mews import MewsClientSettings, MewsSettings, token_hash
from exporter.settings.transfer import TransferSettings

# Seed 003's example tokens (docs/seeds/003.txt) stand for a user of this tenant (test_seed_mews.py).
SEED_003_TENANT = "hotel"
SEED_003_MEWS = MewsSettings(
    clients=[
        MewsClientSettings(
            access_token_sha256=token_hash(
                "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D"
            ),
            client_token_sha256=token_hash(
                "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D"
            ),
            tenant=SEED_003_TENANT,
            user="mews-app",
        )
    ]
)


# Package scope: the services stop after the e2e tests, so their consumer groups do not
# take part in later tests on the same topics.
@pytest.fixture(scope="package")
def services(servers: Settings) -> Iterator[LocalServices]:
    # Transfer locations on loopback (test_transfer.py): the partner bucket on the session's S3.
    transfer = TransferSettings(allow_private_addresses=True)
    running = LocalServices(servers.model_copy(update={"mews": SEED_003_MEWS, "transfer": transfer}))
    running.start()
    try:
        yield running
    finally:
        running.stop()
