"""The ``exporter`` command: the API for people and scripts, and Kafka/MongoDB tooling for
operators. An adapter only: the rules stay in the services and the library it calls.

Exit codes: 0 ok; 1 a failed job or check (``jobs watch``, ``doctor``, ``jobs stuck``, a
refused replay); 2 usage or configuration; 3 the API or a server refused or could not be reached.
"""

from exporter.cli.main import main

__all__ = ["main"]
