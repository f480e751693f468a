"""Schemathesis against a live request-api: every operation of its OpenAPI with generated and
mutated calls, then stateful sequences along the OpenAPI links (create, then read, update, run,
list the jobs, cancel, download and delete what was made).

Every check runs except ``positive_data_acceptance``: some rules cannot be said in JSON Schema
(``from < to``, unique labels, an ISO 8601 duration of at least the configured minimum, the same
Idempotency-Key with another body), so schema-valid bodies may rightly get 400 or 422.
Everything else must hold: no 5xx, every status and body as documented, invalid input refused,
``Allow`` on 405, and no answer but 401 without the bearer token or with a wrong one: the API runs
in jwt mode (``FUZZ_AUTH``), as in production. In header mode any X-User-Id names a valid
caller, so schemathesis's ``ignored_auth`` check could not hold there.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from pydantic import SecretStr

FUZZ_SECRET = "fuzz-only-secret-of-at-least-32-bytes!"


# The API settings under fuzzing: jwt mode with the fuzzer's secret, so its token (``fuzz_token``) passes.
FUZZ_AUTH: dict[str, Any] = {"auth_mode": "jwt", "jwt_secret": SecretStr(FUZZ_SECRET)}


def fuzz_token(user: str = "fuzzer", tenant: str = "fuzz", hours: float = 24) -> str:
    claims = {"sub": user, "tenant": tenant, "exp": int(time.time() + hours * 3600)}
    return jwt.encode(claims, FUZZ_SECRET, algorithm="HS256")


@dataclass(frozen=True, slots=True)
class ApiFuzzReport:
    returncode: int
    output: str

    @property
    def operations(self) -> tuple[int, int]:
        """(operations tested, operations in the schema)."""
        found = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", self.output)
        return (int(found[3]), int(found[2])) if found else (0, -1)

    @property
    def cases(self) -> int:
        found = re.search(r"Test cases:\s+(\d+) generated", self.output)
        return int(found[1]) if found else 0

    @property
    def links(self) -> str:
        """Stateful testing's reach: "covered/total" OpenAPI links."""
        found = re.search(r"API Links:\s+(\d+) covered / \d+ selected / (\d+) total", self.output)
        return f"{found[1]}/{found[2]}" if found else "0/0"

    @property
    def server_errors(self) -> int:
        return len(re.findall(r"Server error", self.output))

    @property
    def ok(self) -> bool:
        tested, total = self.operations
        return self.returncode == 0 and tested == total

    def summary(self) -> str:
        tested, total = self.operations
        return (
            f"api: {tested}/{total} operations, {self.cases} cases, {self.links} links followed, "
            f"{self.server_errors} answers >= 500, schemathesis exit {self.returncode}"
        )


async def fuzz_api(
    base_url: str, workdir: Path, *, examples: int, seed: int, max_seconds: int
) -> ApiFuzzReport:
    """Runs schemathesis as a process (its Hypothesis database and reports stay in ``workdir``)
    against an API set up with ``FUZZ_AUTH``."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {fuzz_token()}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(examples),
        "--max-time",
        str(max_seconds),
        "--seed",
        str(seed),
        "--workers",
        "1",  # with threads, Hypothesis's lambda-source lookup failed once inside schemathesis
        "--no-color",
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return ApiFuzzReport(process.returncode or 0, output.decode(errors="replace"))
