"""``make chaos``: the whole system under faults, checked for anything lost, duplicated or stuck.

Starts the local servers and the five services (two schedulers, renderers and notifiers), drives
the workload (``workload.py``) for ``--minutes`` while injecting faults drawn from ``--seed``
(``faults.py``), lets the system recover, then checks every invariant (``invariants.py``) against
what the stores and sinks hold. The last line sums it up; the exit status says whether it held.

    python -m tests.chaos [--seed N] [--minutes M] [--exports K] [--recovery S]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from exporter.local.demo import DEMO_RECIPIENT
from tests.benchmarks.harness import percentile
from tests.chaos import invariants as check
from tests.chaos.faults import Injected, inject, plan
from tests.chaos.observe import Observed, fired_until, observe, stored_readings, unfinished_jobs
from tests.chaos.system import System, running_system
from tests.chaos.workload import HISTORY_DEVICE, HISTORY_POINTS, Created, Done, Workload, history_pack

CANARY_SECONDS = 300.0


@dataclass
class Outcome:
    seed: int
    minutes: float
    injected: list[Injected] = field(default_factory=list)
    verdicts: list[check.Verdict] = field(default_factory=list)
    done: Done = field(default_factory=Done)
    jobs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(verdict.ok for verdict in self.verdicts)

    def recovery(self) -> tuple[float | None, float | None]:
        seconds = sorted(s for i in self.injected if (s := i.recovery_seconds) is not None)
        return (percentile(seconds, 0.5), percentile(seconds, 0.99)) if seconds else (None, None)

    def recovery_by_kind(self) -> dict[str, list[float]]:
        """Seconds from each fault to the end of the canary after it, by kind of fault."""
        found: dict[str, list[float]] = {}
        for injected in self.injected:
            if (seconds := injected.recovery_seconds) is not None:
                found.setdefault(injected.fault.kind.value, []).append(seconds)
        return found

    def last_line(self) -> str:
        kinds = Counter(i.fault.kind.value for i in self.injected)
        p50, p99 = self.recovery()
        effects = ", ".join(f"{v.kind} {v.counts()}" for v in self.verdicts)
        recovery = f"{p50:.0f}/{p99:.0f} s" if p50 is not None and p99 is not None else "n/a"
        return (
            f"chaos seed {self.seed}, {self.minutes:g} min: faults {sum(kinds.values())} "
            f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); exports "
            f"{len(self.done.requests)} + {len(self.done.adhoc_jobs)} ad hoc, jobs {self.jobs}; "
            f"lost/duplicated/stuck/wrong: {effects}; recovery p50/p99 {recovery}; "
            f"{'PASS' if self.ok else 'FAIL'}"
        )


async def canary(workload: Workload, injected: Injected) -> None:
    """A small export created once the fault is healed; when its job ends, the system recovered."""
    body = {
        "name": f"canary after {injected.fault.describe()}",
        "type": "oneTime",
        "format": {"extension": "csv"},
        "items": [
            {
                "params": {
                    "target": {"value": f"urn:cpt:smartdevice:nid:{HISTORY_DEVICE}:temperature"},
                    "from": int(history_pack().data.base_time or 0) * 1000,
                    "to": (int(history_pack().data.base_time or 0) + 600) * 1000,
                }
            }
        ],
        "notification": {
            "messages": [{"policy": "always", "medium": "email", "recipients": [DEMO_RECIPIENT]}]
        },
    }
    deadline = time.monotonic() + CANARY_SECONDS
    created = await workload.call(
        "POST", "/exports", json=body, headers={"Idempotency-Key": f"canary-{uuid.uuid4()}"}
    )
    if created is None or created.status_code != 201:
        injected.notes.append(f"canary refused: {created and created.text[:200]}")
        return
    request_id = created.json()["id"]
    workload.done.requests[request_id] = Created(request_id, body, 10)
    while time.monotonic() < deadline:
        jobs = await workload.call("GET", f"/exports/{request_id}/jobs")
        items = jobs.json()["items"] if jobs is not None and jobs.status_code == 200 else []
        if items and items[0]["status"] not in ("notProcessed", "inProgress"):
            injected.recovered = time.monotonic()
            return
        await asyncio.sleep(0.5)
    injected.notes.append(f"canary not finished after {CANARY_SECONDS:.0f} s")


async def drive(system: System, outcome: Outcome, exports: int, recovery: float) -> Observed:
    seconds = outcome.minutes * 60
    async with Workload(system.settings, system.services.api_url, outcome.seed, exports) as workload:
        outcome.done = workload.done
        await workload.publish_history()
        async with asyncio.timeout(120):
            while (await stored_readings(system.direct)).get(HISTORY_DEVICE, 0) < HISTORY_POINTS:
                await asyncio.sleep(0.5)
        began = time.monotonic()
        load = asyncio.create_task(workload.run(seconds))
        canaries = []
        for fault in plan(outcome.seed, seconds):
            await asyncio.sleep(max(0.0, began + fault.at - time.monotonic()))
            injected = await inject(system, fault)
            outcome.injected.append(injected)
            print(
                f"{injected.began - began:7.1f} s  {fault.describe()}  {' '.join(injected.notes)}",
                flush=True,
            )
            canaries.append(asyncio.create_task(canary(workload, injected)))
        await load
        await system.ensure_running()
        await asyncio.gather(*canaries)
        workload.done.fired_until, behind = await fired_until(system.direct, recovery)
        if behind >= recovery:
            outcome.problems.append(f"the schedulers were still behind after {behind:.0f} s")
        print(f"schedulers caught up with every due run in {behind:.1f} s; closing the recurring requests")
        await workload.close()
    print(f"workload done; recovery period (up to {recovery:.0f} s)", flush=True)
    deadline = time.monotonic() + recovery
    while time.monotonic() < deadline and await unfinished_jobs(system.direct):
        await asyncio.sleep(2)
    await asyncio.sleep(10)  # the last outbox relays and ingest flushes
    return await observe(system.direct, outcome.done)


def verdicts(seen: Observed, done: Done, system: System, injected: list[Injected]) -> list[check.Verdict]:
    rows = {
        request_id: created.expected_rows
        for request_id, created in done.requests.items()
        if created.expected_rows
    }
    recovered = check.Verdict("recovery", checked=len(injected))
    recovered.stuck += [f"{i.fault.describe()}: {' '.join(i.notes)}" for i in injected if i.recovered is None]
    return [
        check.fired_once(seen.grids, seen.jobs, seen.fired),
        check.jobs_terminal(seen.jobs, done.adhoc_jobs),
        check.rendered_once(seen.jobs, seen.completed),
        check.files_match(seen.jobs, seen.objects),
        check.rows_match(seen.jobs, rows),
        check.notified_once(seen.jobs, {"email": system.smtp.received, "discord": system.chat.accepted}),
        check.iam_once(seen.versions, seen.iam),
        check.grants_applied(done.grants, seen.grants),
        check.ingested_once(done.readings, seen.readings),
        recovered,
    ]


class Options(BaseModel):
    """The harness's options, bounded: a run must fit on a shared 2-core machine."""

    seed: int = Field(default=17, ge=0, le=2**63)
    minutes: float = Field(default=10.0, gt=0, le=120)
    exports: int = Field(default=1000, ge=1, le=20_000)
    recovery: float = Field(default=300.0, ge=10, le=3600)
    run_dir: Path | None = None


async def main(options: Options) -> Outcome:
    outcome = Outcome(options.seed, options.minutes)
    exports, recovery = options.exports, options.recovery
    async with running_system(options.run_dir) as system:
        try:
            seen = await drive(system, outcome, exports, recovery)
        finally:
            await system.resume_all()
        outcome.jobs = len(seen.jobs)
        outcome.verdicts = verdicts(seen, outcome.done, system, outcome.injected)
        outcome.problems += outcome.done.refused
    for verdict in outcome.verdicts:
        print("\n".join(verdict.lines()))
    for problem in outcome.problems[:10]:
        print(f"FAIL workload: {problem}")
    for kind, seconds in sorted(outcome.recovery_by_kind().items()):
        print(f"recovery after {kind}: {', '.join(f'{s:.1f}' for s in seconds)} s")
    print(outcome.last_line(), flush=True)
    return outcome


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--exports", type=int, default=1000)
    parser.add_argument("--recovery", type=float, default=300.0, help="seconds for the system to settle")
    parser.add_argument(
        "--run-dir", type=Path, help="keep the servers' data and logs here (default: a temp dir)"
    )
    try:
        options = Options.model_validate(vars(parser.parse_args()))
    except ValidationError as error:
        parser.error(str(error))
    # The harness's own producer reconnecting through broker restarts is expected, not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    sys.exit(0 if asyncio.run(main(options)).ok else 1)
