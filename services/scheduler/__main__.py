"""``python -m scheduler``: fires due runs, recovers stuck jobs, expires old ones."""

from exporter.runtime import run_stream_service
from scheduler.app import create_app

if __name__ == "__main__":
    run_stream_service(create_app)
