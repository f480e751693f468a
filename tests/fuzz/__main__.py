"""``make fuzz``: the API fuzzer and the consumer fuzzer, long, against fresh servers and the five
services as processes. Prints each fuzzer's figures; the last line sums them up beside the
targets (0 answers >= 500, 0 crashed or stalled consumers, every refused message dead-lettered)
and the exit status says whether they were met.

    python -m tests.fuzz [--seed N] [--examples 1000] [--messages 300] [--minutes 15]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from exporter.local.services import LocalServices
from exporter.settings import Settings
from tests.benchmarks.harness import local_servers
from tests.fuzz.api import FUZZ_AUTH, fuzz_api
from tests.fuzz.consumers import fuzz_consumers


def fuzz_settings(settings: Settings, run_dir: Path) -> Settings:
    """Quotas out of the way, so generated calls reach the code behind them instead of 429s; the
    fuzzer's bearer token trusted (see ``tests.fuzz.api``)."""
    api = settings.api.model_copy(update={**FUZZ_AUTH, "max_active_jobs_per_user": 1_000_000})
    local = settings.local.model_copy(update={"run_dir": run_dir})
    return settings.model_copy(update={"api": api, "local": local})


async def main(seed: int, examples: int, messages: int, minutes: float) -> bool:
    began = time.monotonic()
    with local_servers() as (settings, _servers), tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        services = LocalServices(fuzz_settings(settings, settings.local.run_dir))
        services.start()
        try:
            api = await fuzz_api(
                services.api_url, Path(scratch), examples=examples, seed=seed, max_seconds=int(minutes * 60)
            )
            print(api.output[-6_000:] if not api.ok else api.summary(), flush=True)
            consumers = await fuzz_consumers(services, seed, messages)
            print(consumers.summary())
            for line in consumers.missing[:30] + consumers.unexplained[:30]:
                print(f"  not dead-lettered: {line}")
            if consumers.stalled or consumers.crashed:
                print(f"  stalled: {consumers.stalled}; crashed: {consumers.crashed}")
        finally:
            services.stop()
    met = api.ok and api.server_errors == 0 and consumers.ok
    print(
        f"fuzz seed {seed}, {time.monotonic() - began:.0f} s: {api.summary()}; {consumers.summary()} "
        "| targets: 0 answers >= 500, 0 crashed or stalled consumers, every refused message "
        f"dead-lettered: {'met' if met else 'NOT met'}"
    )
    return met


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--examples", type=int, default=1000, help="schemathesis examples per operation")
    parser.add_argument("--messages", type=int, default=300, help="hostile records per topic")
    parser.add_argument("--minutes", type=float, default=15.0, help="time budget of the API fuzzer")
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(main(args.seed, args.examples, args.messages, args.minutes)) else 1)
