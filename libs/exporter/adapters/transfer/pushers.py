"""One file pushed from our object store to a transfer location, streamed (never whole in
memory), its failures sorted into transient (tried again) and permanent (a reason a user can act
on), as the notifier's media sort theirs (``exporter.notifications.sending``).

Where it lands is ``exporter.domain.transfers.object_name``: the same name on every attempt.
- S3: a streamed multipart upload through the one storage adapter (``ObjectStore``), with the
  location's own endpoint and credentials; an object appears only when complete.
- SFTP (asyncssh): written to ``NAME.part``, then renamed over ``NAME``; the server's key must be
  the one the location names (no trust on first use).
- HTTPS: ``PUT URL/NAME`` with its length and ``Repr-Digest`` (RFC 9530, the file's SHA-256);
  redirects are not followed (they could lead anywhere).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
from collections.abc import AsyncIterator
from urllib.parse import quote

import asyncssh
import httpx
import urllib3
from minio.error import MinioException, S3Error

from exporter.adapters.storage import PART_SIZE, ObjectStore
from exporter.adapters.transfer.reach import s3_endpoint
from exporter.contracts.job import JobFile
from exporter.contracts.transfer import Destination, HttpsLocation, S3Location, SftpLocation
from exporter.domain.transfers import object_name
from exporter.notifications.sending import DeliveryFailure, http_failure, permanent, transient
from exporter.settings import StorageSettings

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# What a user can fix, by S3 error code; any other code may pass when tried again.
S3_REFUSALS = {
    "AccessDenied": "the location's credentials may not write to the bucket",
    "InvalidAccessKeyId": "the location's access key is not known to the server",
    "SignatureDoesNotMatch": "the location's secret key is wrong",
    "NoSuchBucket": "the location's bucket does not exist",
}


async def push(destination: Destination, store: ObjectStore, file: JobFile, step_seconds: float) -> None:
    """Raises ``DeliveryFailure`` when the file did not arrive."""
    if isinstance(destination, S3Location):
        await _push_s3(destination, store, file)
    elif isinstance(destination, SftpLocation):
        await _push_sftp(destination, store, file, step_seconds)
    else:
        await _push_https(destination, store, file, step_seconds)


async def _chunks(store: ObjectStore, key: str) -> AsyncIterator[bytes]:
    reading = store.reading(key)
    stream = await asyncio.to_thread(reading.__enter__)
    try:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(reading.__exit__, None, None, None)


async def _push_s3(location: S3Location, store: ObjectStore, file: JobFile) -> None:
    endpoint = s3_endpoint(location)
    target = ObjectStore(
        StorageSettings(
            endpoint=f"{endpoint.host}:{endpoint.port}",
            access_key=location.access_key,
            secret_key=location.secret_key,
            bucket=location.bucket,
            region=location.region,
            secure=endpoint.secure,
        )
    )
    name = object_name(location.prefix, file.name)

    def copy() -> None:
        with store.reading(file.key) as source, target.uploading(name, file.content_type, PART_SIZE) as sink:
            shutil.copyfileobj(source, sink, CHUNK)

    try:
        await asyncio.to_thread(copy)
    except S3Error as error:
        if error.code in S3_REFUSALS:
            raise permanent(f"S3 {error.code}: {S3_REFUSALS[error.code]}") from error
        raise transient(f"S3 {error.code}: the server refused for now") from error
    except (OSError, urllib3.exceptions.HTTPError, MinioException) as error:  # unreachable, 5xx
        log.warning("push of %s to S3: %s", file.name, error)
        raise transient(f"S3: could not reach the server ({type(error).__name__})") from error


async def _push_sftp(location: SftpLocation, store: ObjectStore, file: JobFile, step_seconds: float) -> None:
    host = location.host.strip("[]")
    pattern = host if location.port == 22 else f"[{host}]:{location.port}"
    try:
        known = asyncssh.import_known_hosts(f"{pattern} {location.known_host_key}\n")
        keys = None
        if location.private_key is not None:
            keys = [asyncssh.import_private_key(location.private_key.get_secret_value())]
    except (asyncssh.KeyImportError, ValueError) as error:
        raise permanent(f"SFTP: the location's key cannot be read ({type(error).__name__})") from error
    password = location.password.get_secret_value() if location.password is not None else None
    name = object_name(location.directory, file.name)
    try:
        async with (
            asyncssh.connect(
                host,
                location.port,
                username=location.user,
                password=password,
                client_keys=keys,
                known_hosts=known,
                connect_timeout=step_seconds,
                login_timeout=step_seconds,
            ) as connection,
            connection.start_sftp_client() as sftp,
        ):
            if "/" in name:
                await sftp.makedirs(name.rsplit("/", 1)[0], exist_ok=True)
            async with sftp.open(f"{name}.part", "wb") as remote:
                async for chunk in _chunks(store, file.key):
                    await remote.write(chunk)
            await sftp.posix_rename(f"{name}.part", name)
    except asyncssh.HostKeyNotVerifiable as error:
        raise permanent("SFTP: the server's key is not the location's known host key") from error
    except asyncssh.PermissionDenied as error:
        raise permanent("SFTP: the server refused the location's user and credentials") from error
    except asyncssh.SFTPError as error:
        raise permanent(f"SFTP: the server refused to write {name}: {error.reason}") from error
    except (OSError, asyncssh.Error, TimeoutError) as error:
        log.warning("push of %s to SFTP: %s", file.name, error)
        raise transient(f"SFTP: could not reach the server ({type(error).__name__})") from error


def _digest(checksum: str) -> dict[str, str]:
    algorithm, _, value = checksum.partition(":")
    if algorithm != "sha256" or not value:
        return {}
    return {"Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(value)).decode()}:"}


async def _push_https(
    location: HttpsLocation, store: ObjectStore, file: JobFile, step_seconds: float
) -> None:
    url = f"{location.url.rstrip('/')}/{quote(file.name)}"
    headers = {name: value.get_secret_value() for name, value in location.headers.items()}
    headers |= {
        "Content-Length": str(file.size_in_bytes),
        "Content-Type": file.content_type,
        **_digest(file.checksum),
    }
    try:
        async with httpx.AsyncClient(timeout=step_seconds, follow_redirects=False) as client:
            response = await client.put(url, content=_chunks(store, file.key), headers=headers)
    except httpx.TimeoutException as error:
        raise transient(f"HTTPS: timed out ({type(error).__name__})") from error
    except httpx.TransportError as error:
        log.warning("push of %s over HTTPS: %s: %s", file.name, type(error).__name__, error)
        raise transient(f"HTTPS: could not connect ({type(error).__name__})") from error
    if not response.is_success:
        raise _refusal(response)


def _refusal(response: httpx.Response) -> DeliveryFailure:
    if response.is_redirect:
        return permanent(f"HTTPS {response.status_code}: the URL redirects; give the final one")
    if response.status_code in {401, 403}:
        return permanent(f"HTTPS {response.status_code}: the location's headers were not accepted")
    return http_failure(response.status_code, response.reason_phrase or "refused")
