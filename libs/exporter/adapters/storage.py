"""Object storage (MinIO / S3 / SeaweedFS) through the minio SDK: the one storage adapter.

The SDK is synchronous; calls run in worker threads so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, cast

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from exporter.settings import StorageSettings

# Multipart: files are sent in 16 MiB parts, so a large export never sits whole in memory.
PART_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    etag: str


def http_client(settings: StorageSettings) -> urllib3.PoolManager:
    """The SDK's connection pool with bounded timeouts and retries (its own wait 300 s, 5 times):
    a hanging store fails a call in about (connect + read) x (retries + 1) seconds."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=settings.connect_timeout_seconds, read=settings.read_timeout_seconds),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=settings.retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )


class ObjectStore:
    def __init__(self, settings: StorageSettings) -> None:
        self.bucket = settings.bucket
        secret = settings.secret_key.get_secret_value()
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=secret,
            secure=settings.secure,
            region=settings.region,
            http_client=http_client(settings),
        )
        # Links are signed for the host the client will call, which may differ from ours.
        self._signer = Minio(
            settings.public_endpoint or settings.endpoint,
            access_key=settings.access_key,
            secret_key=secret,
            secure=settings.secure,
            region=settings.region,
        )

    async def ensure_bucket(self) -> None:
        if not await asyncio.to_thread(self._client.bucket_exists, self.bucket):
            try:
                await asyncio.to_thread(self._client.make_bucket, self.bucket)
            except S3Error as error:
                if error.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    async def check_bucket(self) -> None:
        """Raises unless the bucket answers (a head-bucket): readiness, which changes nothing."""
        if not await asyncio.to_thread(self._client.bucket_exists, self.bucket):
            raise LookupError(f"bucket {self.bucket!r} does not exist")

    async def upload_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        result = await asyncio.to_thread(
            self._client.fput_object,
            self.bucket,
            key,
            str(path),
            content_type=content_type,
            part_size=PART_SIZE,
        )
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        return StoredObject(key=key, size=size, etag=str(result.etag))

    @contextmanager
    def uploading(self, key: str, content_type: str, part_size: int) -> Iterator[StreamingUpload]:
        """A sink whose bytes go up while they are written; blocking, for a worker thread.

        Leaving the block completes the object; leaving it with an error aborts the upload, so
        nothing of it stays behind, and the error goes on.
        """
        upload = StreamingUpload(self._client, self.bucket, key, content_type, part_size)
        try:
            yield upload
        except BaseException as error:
            upload.abort(error)
            raise
        upload.complete()

    async def stat(self, key: str) -> StoredObject | None:
        try:
            info = await asyncio.to_thread(self._client.stat_object, self.bucket, key)
        except S3Error as error:
            if error.code in {"NoSuchKey", "NoSuchObject"}:
                return None
            raise
        return StoredObject(key=key, size=int(info.size or 0), etag=str(info.etag))

    async def read(self, key: str) -> bytes:
        """Whole object in memory: for small files only (attachments, tests)."""

        def _read() -> bytes:
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(_read)

    async def delete_prefix(self, prefix: str) -> int:
        def _delete() -> int:
            keys = [DeleteObject(o.object_name) for o in self._client.list_objects(self.bucket, prefix, True)]
            errors = list(self._client.remove_objects(self.bucket, keys))
            if errors:
                raise RuntimeError(f"could not delete {len(errors)} objects under {prefix}: {errors[0]}")
            return len(keys)

        return await asyncio.to_thread(_delete)

    async def list_keys(self, prefix: str) -> list[str]:
        def _list() -> list[str]:
            return [str(o.object_name) for o in self._client.list_objects(self.bucket, prefix, True)]

        return await asyncio.to_thread(_list)

    async def unfinished_uploads(self, prefix: str) -> list[str]:
        """Keys with a multipart upload begun and neither completed nor aborted: what a crashed
        writer leaves behind (and a bucket lifecycle rule should expire)."""

        def _list() -> list[str]:
            # The SDK has no public call for ListMultipartUploads.
            listed = self._client._list_multipart_uploads(self.bucket, prefix=prefix)
            return [str(upload.object_name) for upload in listed.uploads]

        return await asyncio.to_thread(_list)

    def presigned_url(self, key: str, ttl: timedelta, download_name: str | None = None) -> str:
        """A GET link that expires after ``ttl``; signing is local, no request is made."""
        headers: dict[str, str | list[str] | tuple[str]] | None = (
            {"response-content-disposition": f'attachment; filename="{download_name}"'}
            if download_name
            else None
        )
        return self._signer.presigned_get_object(self.bucket, key, expires=ttl, response_headers=headers)


class UploadAbandoned(Exception):
    """The writer gave up on an upload: the uploader stops reading and aborts it."""


class _Pipe:
    """Bytes from a writing thread to the uploader's ``read``, at most about ``capacity`` held.

    ``read(n)`` waits for ``n`` bytes (or the end), so each multipart part is read in one piece.
    A failure on either side wakes the other: the uploader's error stops the writer, the writer's
    abandonment stops the uploader.
    """

    def __init__(self, capacity: int) -> None:
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._capacity = capacity
        self._ended = False
        self._abandoned: BaseException | None = None
        self.upload_error: BaseException | None = None
        self._changed = threading.Condition()

    def write(self, data: bytes, /) -> int:
        size = len(data)
        with self._changed:
            if self._abandoned is not None:  # a late write, a zip's directory say, goes nowhere
                return size
            while self._held >= self._capacity and self.upload_error is None:
                self._changed.wait()
            if self.upload_error is not None:
                raise self.upload_error
            self._chunks.append(bytes(data))
            self._held += size
            self._changed.notify_all()
        return size

    def read(self, size: int = -1, /) -> bytes:
        with self._changed:
            while (size < 0 or self._held < size) and not self._ended and self._abandoned is None:
                self._changed.wait()
            if self._abandoned is not None:
                raise UploadAbandoned(str(self._abandoned))
            pieces, wanted = [], self._held if size < 0 else min(size, self._held)
            while wanted:
                chunk = self._chunks.popleft()
                if len(chunk) > wanted:
                    chunk, rest = chunk[:wanted], chunk[wanted:]
                    self._chunks.appendleft(rest)
                pieces.append(chunk)
                wanted -= len(chunk)
                self._held -= len(chunk)
            self._changed.notify_all()
        return b"".join(pieces)

    def end(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def abandon(self, reason: BaseException) -> None:
        with self._changed:
            self._abandoned = reason
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._changed:
            self.upload_error = error
            self._changed.notify_all()


class StreamingUpload:
    """One object uploaded by a thread of its own while it is written: ``put_object`` of unknown
    length, which sends ``part_size`` parts as a multipart upload (one plain PUT for a small
    object) and aborts the multipart upload when reading fails."""

    def __init__(self, client: Minio, bucket: str, key: str, content_type: str, part_size: int) -> None:
        self.key = key
        self._pipe = _Pipe(2 * part_size)

        def upload() -> None:
            try:
                client.put_object(
                    bucket,
                    key,
                    cast("BinaryIO", self._pipe),  # only read() is called
                    length=-1,
                    content_type=content_type,
                    part_size=part_size,
                    num_parallel_uploads=1,
                )
            except BaseException as error:  # handed to the writing thread
                self._pipe.fail(error)

        self._thread = threading.Thread(target=upload, name=f"upload {key}", daemon=True)
        self._thread.start()

    def write(self, data: bytes, /) -> int:
        return self._pipe.write(data)

    def complete(self) -> None:
        self._pipe.end()
        self._thread.join()
        if self._pipe.upload_error is not None:
            raise self._pipe.upload_error

    def abort(self, reason: BaseException) -> None:
        self._pipe.abandon(reason)
        self._thread.join()
