"""``python -m request_api``: serves the HTTP API."""

import uvicorn

from exporter.runtime import configure_logging
from exporter.settings import get_settings
from request_api.app import create_app


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    # uvloop and httptools: the C event loop and HTTP parser roughly halve the per-request overhead.
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
