"""``python -m ingestor``: stores upstream measurements."""

from exporter.runtime import run_stream_service
from ingestor.app import create_app

if __name__ == "__main__":
    run_stream_service(create_app)
