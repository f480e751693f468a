"""Object storage (MinIO / S3 / SeaweedFS) through the minio SDK: the one storage adapter.

The SDK is synchronous; calls run in worker threads so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

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

    def presigned_url(self, key: str, ttl: timedelta, download_name: str | None = None) -> str:
        """A GET link that expires after ``ttl``; signing is local, no request is made."""
        headers: dict[str, str | list[str] | tuple[str]] | None = (
            {"response-content-disposition": f'attachment; filename="{download_name}"'}
            if download_name
            else None
        )
        return self._signer.presigned_get_object(self.bucket, key, expires=ttl, response_headers=headers)
