"""``python -m notifier``: delivers notifications of finished exports."""

from exporter.runtime import run_stream_service
from notifier.app import create_app

if __name__ == "__main__":
    run_stream_service(create_app, fast_loop=True)
