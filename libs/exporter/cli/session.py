"""What every command gets: the parsed arguments, the API client and the service settings,
each made only when the command asks for it, and the output in the chosen format."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from exporter.cli import config
from exporter.cli.client import ApiClient
from exporter.cli.output import emit
from exporter.settings import Settings, get_settings

MAX_INPUT_BYTES = 4 * 1024 * 1024


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.format: str = args.output
        # Progress and notes go to stderr, so stdout stays the result alone.
        self.err = Console(stderr=True)

    @functools.cached_property
    def config(self) -> config.ClientConfig:
        flags = {"api_url": self.args.api_url, "tenant": self.args.tenant, "user": self.args.user}
        if self.args.timeout is not None:
            flags["timeout_seconds"] = self.args.timeout
        return config.resolve(flags, profile=self.args.profile)

    @functools.cached_property
    def api(self) -> ApiClient:
        return ApiClient(self.config)

    @functools.cached_property
    def settings(self) -> Settings:
        """The services' settings (``EXPORTER_*``): what operator commands reach Kafka and MongoDB with."""
        return get_settings()

    def show(self, data: Any, columns: Sequence[str] = ()) -> None:
        emit(data, self.format, columns)

    def note(self, text: str) -> None:
        self.err.print(text, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if "api" in self.__dict__:
            self.api.close()


def read_input(source: Path | str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A file's bytes, or stdin's for ``-``; at most ``limit`` bytes."""
    if str(source) == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        with Path(source).open("rb") as file:
            data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{source}: more than {limit} bytes")
    return data


def read_json_object(source: Path | str) -> dict[str, Any]:
    """A JSON object from a file or stdin (an export request spec, say)."""
    try:
        value = json.loads(read_input(source))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{source}: not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source}: a JSON object is expected")
    return value


def bounded(low: float, high: float, kind: type[int] | type[float] = int) -> Callable[[str], float]:
    """An argparse type: a number from ``low`` to ``high``, else a usage error naming the range."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse
