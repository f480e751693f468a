"""``make chaos`` in short, inside ``make test``: two minutes of faults with a fixed seed and a
small workload, on servers and services of its own, and the harness's verdict."""

from __future__ import annotations

import pytest

from tests.chaos.__main__ import Options, main

SEED = 17


@pytest.mark.timeout(900)
async def test_two_minutes_of_faults_lose_duplicate_and_strand_nothing() -> None:
    outcome = await main(Options(seed=SEED, minutes=2, exports=30, recovery=180))
    failed = [line for verdict in outcome.verdicts if not verdict.ok for line in verdict.lines()]
    assert outcome.ok, "\n".join([outcome.last_line(), *failed, *outcome.problems])
