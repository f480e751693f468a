"""The five services as real child processes against the session's local servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.local.services import LocalServices
from exporter.settings import Settings


# Package scope: the services stop after the e2e tests, so their consumer groups do not
# take part in later tests on the same topics.
@pytest.fixture(scope="package")
def services(servers: Settings) -> Iterator[LocalServices]:
    running = LocalServices(servers)
    running.start()
    try:
        yield running
    finally:
        running.stop()
