"""Reading a /metrics page the way Prometheus does, for tests."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# Histogram and counter samples carry their family's name plus one of these.
SAMPLE_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")
POLL_SECONDS = 0.1
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Scrape:
    """Every sample of one /metrics page, and the families it declares."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {}
        families = set()
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples, frozenset(families))

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels; 0 when absent (a series not yet created)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def label_values(self, name: str, label: str) -> set[str]:
        return {
            dict(labels)[label] for (sample, labels), _ in self.samples.items() if sample == name
        }

    def names(self) -> set[str]:
        """Every metric name a query may use: sample names, and family names with suffixes."""
        from_samples = {name for name, _ in self.samples}
        return from_samples | {f + suffix for f in self.families for suffix in SAMPLE_SUFFIXES}


def scrape_url(url: str) -> Scrape:
    """GET a /metrics URL with urllib (for processes outside the test's event loop)."""
    with _NO_PROXY.open(url, timeout=5) as response:
        return Scrape.parse(response.read().decode())


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    """Poll `check` until true; fail naming `what` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not {what} after {timeout:.0f}s")
        await asyncio.sleep(POLL_SECONDS)
