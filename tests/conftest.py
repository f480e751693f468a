"""Session fixtures: the real local servers, started once and only for tests that ask for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.local.servers import LocalServers
from exporter.settings import Settings, get_settings


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Kafka, S3, MongoDB and SMTP on free loopback ports in a temporary run dir.

    The ``EXPORTER_*`` variables go into ``os.environ`` for the session, so ``get_settings()`` here
    and services started as subprocesses both find these servers.
    """
    settings = LocalServers.test_settings(tmp_path_factory.mktemp("servers"))
    local = LocalServers(settings)
    environment = pytest.MonkeyPatch()
    try:
        local.start()
        for name, value in local.env().items():
            environment.setenv(name, value)
        get_settings.cache_clear()
        yield settings
    finally:
        local.stop()
        environment.undo()
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(servers: Settings) -> Settings:
    """The settings that point at the session's servers."""
    return servers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the tests that use the servers, so ``-m "not servers"`` runs only the pure ones."""
    for item in items:
        if "servers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.servers)
