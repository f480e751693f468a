"""All the files of one job, each to an object of its own and, when there are several, also into one
zip of them all, written in the same pass (a ``TeeSink``): nothing is read back to be zipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime

from exporter.rendering.archive import CONTENT_TYPE as ZIP_CONTENT_TYPE
from exporter.rendering.archive import ZipArchive
from exporter.rendering.names import FileNamer
from exporter.rendering.output import FileFormat, PartWriter, RenderedFile, SplitLimits, Unfinished
from exporter.rendering.sinks import BinarySink, TeeSink
from exporter.rendering.writers import Document

# Opens the object named ``name`` with the given content type; leaving with an error abandons it.
OpenObject = Callable[[str, str], AbstractContextManager[BinarySink]]


class JobFiles:
    """A job's files, one ``PartWriter`` after another, and the zip of them all when ``zip_name``.

    The zip is written while the files are (an entry per file), since whether a job ends with
    several files is only known at its end; one that ends with a single file drops its zip,
    unless ``always_zip`` (seed 001's archive).
    """

    def __init__(
        self,
        open_object: OpenObject,
        zip_name: str | None = None,
        modified: datetime | None = None,
        always_zip: bool = False,
    ):
        self.files: list[RenderedFile] = []
        self._always_zip = always_zip
        self._open_object = open_object
        self._zip_upload = ExitStack()
        self._zip: ZipArchive | None = None
        if zip_name is not None:
            sink = self._zip_upload.enter_context(open_object(zip_name, ZIP_CONTENT_TYPE))
            self._zip = ZipArchive(zip_name, sink, modified)

    def writer(
        self, name: str, file_format: FileFormat, document: Document, namer: FileNamer, limits: SplitLimits
    ) -> PartWriter:
        """The file ``name`` (or its parts); ``add`` it once closed."""

        @contextmanager
        def open_part(part: str) -> Iterator[BinarySink]:
            with self._open_object(part, file_format.content_type) as upload:
                if self._zip is None:
                    yield upload
                else:
                    with self._zip.entry(part) as entry:
                        yield TeeSink(upload, entry)

        return PartWriter(name, open_part, file_format, document, namer, limits)

    def add(self, files: list[RenderedFile]) -> None:
        self.files += files

    def close(self) -> list[RenderedFile]:
        """The files, and the zip when there are several or it is always wanted (else the zip's
        upload is abandoned)."""
        if self._zip is None:
            return self.files
        if len(self.files) < 2 and not self._always_zip:
            self.discard(Unfinished("one file needs no zip"))
            return self.files
        archive = self._zip.close(rows=sum(file.rows for file in self.files))
        self._zip_upload.close()
        return [*self.files, archive]

    def discard(self, error: BaseException) -> None:
        """Abandons the zip being written (the files' own uploads are their writers' to abandon)."""
        self._zip_upload.__exit__(type(error), error, error.__traceback__)
