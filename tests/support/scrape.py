"""A scrape of the exporter's real HTTP output, parsed into samples tests can ask about."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    """A parsed scrape: samples by family, each as (labels dict, value)."""

    families: dict[str, list[tuple[dict[str, str], float]]]
    text: str

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [(lbl, v) for lbl, v in self.families.get(name, []) if all(lbl.get(k) == x for k, x in labels.items())]

    def value(self, name: str, **labels: str) -> float | None:
        found = self.samples(name, **labels)
        if len(found) > 1:
            raise AssertionError(f"{name}{labels} matches {len(found)} samples")
        return found[0][1] if found else None

    def label_values(self, name: str, label: str, **labels: str) -> set[str]:
        return {lbl[label] for lbl, _ in self.samples(name, **labels)}

    def current_state(self, name: str, **labels: str) -> str | None:
        on = [lbl["state"] for lbl, v in self.samples(name, **labels) if v == 1.0]
        assert len(on) <= 1, f"{name}{labels} has several states set: {on}"
        return on[0] if on else None


def parse_exposition(text: str) -> Scrape:
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in seen, f"duplicate series {key}"
            seen.add(key)
            families.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return Scrape(families, text)


def gunzip(data: bytes) -> bytes:
    return gzip.decompress(data)
