"""``exporter download``: a job's files into a directory, through the API's short-lived links."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from exporter.cli.paths import target_path
from exporter.cli.session import Session, bounded


def register(commands: Any) -> None:
    command = commands.add_parser("download", help="a done job's files, with a progress bar")
    command.add_argument("job")
    command.add_argument("--out", type=Path, default=Path(), help="directory (default: the current one)")
    command.add_argument("--file", type=bounded(0, 10_000), help="only this file (index); default: all")
    command.set_defaults(run=download)


def download(session: Session, args: argparse.Namespace) -> int:
    """Each file is asked a fresh link just before it is fetched (links live seconds), written
    under a temporary name and renamed once complete: no half file keeps the final name."""
    job = session.api.call("GET", f"/jobs/{args.job}")
    indexes = [args.file] if args.file is not None else range(len(job.get("files") or []))
    args.out.mkdir(parents=True, exist_ok=True)
    saved = []
    progress = Progress(
        "{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=session.err
    )
    with progress:
        for index in indexes:
            link = session.api.call(
                "GET",
                f"/jobs/{args.job}/download",
                params={"file": index},
                headers={"Accept": "application/json"},
            )
            name = str(link.get("file", {}).get("name") or "")
            path = target_path(args.out, name, fallback=f"{args.job}-{index}")
            task = progress.add_task(path.name, total=None)
            partial = path.with_name(f".{path.name}.part")

            def advance(chunk: int, total: int | None, task: Any = task) -> None:
                progress.update(task, advance=chunk, total=total)

            try:
                size = session.api.download(link["url"], partial, advance)
                partial.replace(path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
            saved.append({"file": index, "path": str(path), "sizeInBytes": size})
    session.show(saved, ("file", "path", "sizeInBytes"))
    return 0
