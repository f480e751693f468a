"""Reading Prometheus exposition text in tests: the value of a sample, summed over the series
whose labels include the given ones (0 when none exists yet)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float:
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == name and labels.items() <= found.labels.items()
    )


def family_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        answer = await client.get(url)
    answer.raise_for_status()
    return answer.text
