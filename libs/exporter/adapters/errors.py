"""Which library errors are worth another try: the store or the network hiccuped, nothing is wrong
with the work itself. Callers retry those with backoff and give up on the rest at once."""

from __future__ import annotations

from aiokafka.errors import KafkaError
from minio.error import InvalidResponseError, S3Error, ServerError
from pymongo.errors import ConnectionFailure, CursorNotFound, ExecutionTimeout, PyMongoError
from urllib3.exceptions import HTTPError

# S3 error codes that mean "not now" rather than "never".
TRANSIENT_S3_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed"}
)
# Labels MongoDB servers and drivers put on errors that a retry may get past.
TRANSIENT_MONGO_LABELS = ("RetryableWriteError", "TransientTransactionError", "RetryableError")


def is_transient(error: BaseException) -> bool:
    if isinstance(error, PyMongoError):
        return isinstance(error, ConnectionFailure | CursorNotFound | ExecutionTimeout) or any(
            error.has_error_label(label) for label in TRANSIENT_MONGO_LABELS
        )
    if isinstance(error, S3Error):
        return error.code in TRANSIENT_S3_CODES
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    # A 5xx answer without an S3 error body, a garbled answer, or no answer at all.
    return isinstance(error, ServerError | InvalidResponseError | HTTPError | ConnectionError | TimeoutError)


class Undeliverable(Exception):
    """The broker refuses this message for good (larger than it takes): another try cannot help.
    The publisher has parked it on the topic's dead-letter topic, with the reason."""
