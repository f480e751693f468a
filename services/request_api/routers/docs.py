"""``/docs`` and ``/redoc`` on assets this service serves itself (``/static``), so both work on a
closed network; FastAPI's defaults load them from a CDN and show a blank page without one."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_URL = "/static"
# Vendored from npm (see static/README.md); each directory names its version, so a file's URL
# changes with its content and browsers may keep it for a year.
SWAGGER_UI = f"{STATIC_URL}/vendor/swagger-ui-dist-5.36.0"
REDOC = f"{STATIC_URL}/vendor/redoc-2.5.4"
LONG_CACHE = "public, max-age=31536000, immutable"
TITLE = "Exporter request-api"

router = APIRouter(include_in_schema=False)


class PinnedFiles(StaticFiles):
    """Static files with long-cache headers: every URL under it names a pinned version."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = LONG_CACHE
        return response


def static_files() -> PinnedFiles:
    return PinnedFiles(directory=STATIC_DIR)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        # Its default sends the document to validator.swagger.io: off, nothing leaves the network.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{REDOC}/redoc.standalone.js",
        redoc_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        with_google_fonts=False,
    )
