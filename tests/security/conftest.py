"""The security tests use the integration tests' wired runtime."""

from tests.integration.conftest import runtime

__all__ = ["runtime"]
