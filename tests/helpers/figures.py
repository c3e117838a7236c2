"""Figures the hardening tests measure (faults injected, fuzz examples, storm totals), printed
at the end of the pytest run so every `make test` output records them."""

from __future__ import annotations

from collections import Counter, defaultdict

# section -> counter of label -> number
FIGURES: dict[str, Counter[str]] = defaultdict(Counter)


def add(section: str, label: str, amount: int = 1) -> None:
    FIGURES[section][label] += amount


def merge(other: dict[str, dict[str, int]]) -> None:
    """Add a pytest-xdist worker's figures (its `workeroutput`) to this process's."""
    for section, counts in other.items():
        FIGURES[section].update(counts)


def render() -> list[str]:
    lines: list[str] = []
    for section in sorted(FIGURES):
        lines.append(f"{section}:")
        for label, amount in sorted(FIGURES[section].items()):
            lines.append(f"  {label:<58} {amount:>9,}")
    return lines
