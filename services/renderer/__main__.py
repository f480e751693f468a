"""``python -m renderer``: renders export jobs."""

from exporter.runtime import run_stream_service
from renderer.app import create_app

if __name__ == "__main__":
    run_stream_service(create_app)
