"""``/version``: what is running, for operators (``exporter doctor``) and for clients that pin
an API version. Public: it names no tenant's data."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request

from exporter.settings import Settings
from request_api.http import JsonBody
from request_api.responses import VersionInfo

router = APIRouter()
PACKAGE = "exporter"


@cache
def package_version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@router.get("/version", response_model=VersionInfo, openapi_extra={"security": []})
async def get_version(request: Request) -> Any:
    """The installed package's version, this API's version, and the commit the build named
    (``EXPORTER_API__BUILD_COMMIT``; the running service never reads ``.git``)."""
    settings: Settings = request.app.state.settings
    return JsonBody(
        {
            "service": PACKAGE,
            "version": package_version(),
            "apiVersion": request.app.version,
            "commit": settings.api.build_commit,
        }
    )
