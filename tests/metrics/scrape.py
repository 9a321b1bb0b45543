"""Reading a live /metrics: the names it exports and the value of one sample."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

#: The suffixes Prometheus gives a family's samples, by family type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    return await response.text()


def exported_names(text: str) -> set[str]:
    """Every name a query may use: each family's name, its samples' names, and the sample
    names its type implies even before it has a sample (a labelled counter not yet
    incremented still exports its HELP and TYPE)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(f"{family.name}{suffix}" for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None
