"""Seed 004's (docs/seeds/004.txt) example answers, as written, and the field-by-field check of
ours against them: the same fields at every level, each of the seed's JSON type."""

from __future__ import annotations

from typing import Any

SEED_ENTRY_FIELDS = {
    "identity": 1,
    "dataExportId": 22,
    "dataExportName": "Sample Text Data",
    "created": "2021-04-26T15:25:27.587Z",
    "start": "2021-04-26T15:25:27.587Z",
    "complete": "2021-04-26T15:25:27.587Z",
    "dataExportHistoryStatusTypeId": 25,
    "dataExportHistoryStatusTypeName": "Sample Text Data",
    "storageLocationId": 20,
    "storageLocationName": "Sample Text Data",
    "storageKey": "123ABC",
    "exportRowCount": 26,
    "createdByUserId": 6,
    "createdByUserName": "Sample Text Data",
    "parameters": "Sample Text Data",
    "transferLocationId": 5,
    "transferLocationName": "Sample Text Data",
    "fileMoveLogIdentity": 23,
}
# GET DataExport/History/
SEED_ALL = {
    "trackingId": "d2ae5304-2355-44eb-a328-272f02935f8b",
    "totalCount": 1,
    "items": [SEED_ENTRY_FIELDS],
}
# GET DataExport/History/Paged
SEED_PAGED = {
    "trackingId": "d2ae5304-2355-44eb-a328-272f02935f8b",
    "pagination": {"pageNumber": 1, "pageSize": 20, "excludeTotalCount": False},
    "pagedResults": {"totalCount": 1, "items": [SEED_ENTRY_FIELDS]},
}
# GET DataExport/History/{id}
SEED_INSTANCE = {"trackingId": "d2ae5304-2355-44eb-a328-272f02935f8b", "instance": SEED_ENTRY_FIELDS}
# GET DataExport/History/{id}/Download
SEED_DOWNLOAD = {
    "trackingId": "d2ae5304-2355-44eb-a328-272f02935f8b",
    "instance": {**SEED_ENTRY_FIELDS, "link": "https://foo.com/myfile.csv"},
}
# POST DataExport/History/{id}/Cancel: its body and its answer
SEED_CANCEL_BODY = {
    "start": "2021-04-26T15:25:27.587Z",
    "complete": "2021-04-26T15:25:27.587Z",
    "dataExportHistoryStatusTypeId": 3,
    "storageLocationId": 25,
    "storageKey": "123ABC",
    "exportRowCount": 0,
    "createdByUserId": 18,
    "parameters": "Sample Text Data",
    "transferLocationId": 2,
}
SEED_CANCEL = {
    "trackingId": "d2ae5304-2355-44eb-a328-272f02935f8b",
    "type": "create",
    "results": {"totalCount": 1, "items": [SEED_ENTRY_FIELDS]},
}
# Null until a transfer location exists (transfer locations are another part of issue 19).
UNTIL_TRANSFERS = frozenset({"transferLocationId", "transferLocationName", "fileMoveLogIdentity"})
# Null before the run started, ended or made a file.
UNTIL_RUN = frozenset({"start", "complete", "storageKey"})


def assert_seed_shape(
    ours: Any, seed: Any, nullable: frozenset[str] = UNTIL_TRANSFERS, path: str = ""
) -> None:
    """``ours`` has exactly ``seed``'s fields, recursively, each of the seed's JSON type (or null
    for a field in ``nullable``)."""
    if isinstance(seed, dict):
        assert isinstance(ours, dict), path
        assert set(ours) == set(seed), f"{path}: {sorted(set(ours) ^ set(seed))}"
        for name, value in seed.items():
            if ours[name] is None and name in nullable:
                continue
            assert_seed_shape(ours[name], value, nullable, f"{path}.{name}")
    elif isinstance(seed, list):
        assert isinstance(ours, list), path
        assert ours, path
        for item in ours:
            assert_seed_shape(item, seed[0], nullable, f"{path}[]")
    else:
        assert type(ours) is type(seed), f"{path}: {ours!r} is not like {seed!r}"
