"""Which errors the renderer tries again: the store or the network hiccuped, not the work."""

from __future__ import annotations

import pytest
from minio.error import S3Error, ServerError
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure
from urllib3.exceptions import MaxRetryError

from exporter.adapters.errors import is_transient
from exporter.rendering.decimation import DecimationError


def s3_error(code: str) -> S3Error:
    # No HTTP response behind it (typed as required): is_transient reads only the code.
    return S3Error(None, code, "message", "resource", "request", "host")  # type: ignore[arg-type]


def labelled(label: str) -> OperationFailure:
    error = OperationFailure("write conflict")
    error._add_error_label(label)
    return error


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("primary stepped down"),
        labelled("TransientTransactionError"),
        s3_error("SlowDown"),
        ServerError("bad gateway", 502),
        # No connection pool behind it (typed as required): is_transient reads only the type.
        MaxRetryError(None, "/exports/x", None),  # type: ignore[arg-type]
        ConnectionResetError(),
    ],
)
def test_worth_another_try(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000"),
        OperationFailure("not authorized"),
        s3_error("AccessDenied"),
        DecimationError("decimation function 'avg' cannot aggregate the text values of 'value'"),
        ValueError("bad mask"),
    ],
)
def test_not_worth_another_try(error: BaseException) -> None:
    assert not is_transient(error)
