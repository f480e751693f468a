"""``GET /version``: the package's version, the API's, and the commit the build named (an
environment variable, bounded: never read from ``.git`` at run time)."""

from __future__ import annotations

from importlib.metadata import version

import httpx
import pytest
from pydantic import ValidationError

from exporter.settings import ApiSettings, Settings
from request_api.app import create_app


async def test_version_names_the_package_the_api_and_the_build_commit() -> None:
    app = create_app(Settings(api=ApiSettings(build_commit="7b6e296")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        answer = await client.get("/version")  # public: no identity
    assert answer.status_code == 200
    assert answer.json() == {
        "service": "exporter",
        "version": version("exporter"),
        "apiVersion": app.openapi()["info"]["version"],
        "commit": "7b6e296",
    }


@pytest.mark.parametrize("commit", ["0" * 41, "abc", "7b6e29G", "HEAD", "7b6e296\n"])
def test_a_build_commit_is_7_to_40_hex_digits(commit: str) -> None:
    with pytest.raises(ValidationError, match="build_commit"):
        ApiSettings(build_commit=commit)
