"""Slow, obviously-correct versions of the risk measures, written from the definitions.

They loop over records and key subsets in plain Python, so they only suit the small data of
the property tests; the library must agree with them exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest

SDCMICRO_INPUTS = Path("/work/shared/bench_inputs/sdcmicro")


def sdcmicro_csv(name: str) -> pd.DataFrame:
    """One of sdcMicro's example data sets, read in place; skips the test when it is absent."""
    path = SDCMICRO_INPUTS / name
    if not path.is_file():
        pytest.skip(f"{path} is not available on this machine")
    return pd.read_csv(path)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def naive_frequencies(
    data: pd.DataFrame, keys: list[str], weight: str | None = None, alpha: float = 1.0
) -> tuple[list[float], list[float]]:
    """sdcMicro freqCalc's rule, record pair by record pair (see frequencies' docstring)."""
    rows = [tuple(row) for row in data[keys].itertuples(index=False)]
    weights = [1.0] * len(rows) if weight is None else [float(w) for w in data[weight]]
    fk, big_fk = [], []
    for row in rows:
        row_missing = [_missing(v) for v in row]
        if all(row_missing):
            fk.append(float(len(rows)))
            big_fk.append(sum(weights))
            continue
        f = big_f = 0.0
        for other, w in zip(rows, weights, strict=True):
            other_missing = [_missing(v) for v in other]
            compatible = all(
                a or b or x == y
                for a, b, x, y in zip(row_missing, other_missing, row, other, strict=True)
            )
            if not compatible:
                continue
            same_pattern = row_missing == other_missing and all(
                m or x == y for m, x, y in zip(row_missing, row, other, strict=True)
            )
            # same pattern, or a complete record seen from any: 1; through a missing value: alpha
            share = 1.0 if same_pattern or not any(other_missing) else alpha
            f += share
            big_f += share * w
        fk.append(f)
        big_fk.append(big_f)
    return fk, big_fk


def naive_suda_msus(data: pd.DataFrame, keys: list[str]) -> list[list[tuple[str, ...]]]:
    """Every minimal sample unique of every record, by brute force over all key subsets."""
    rows = [tuple(row) for row in data[keys].itertuples(index=False)]

    def unique(i: int, subset: tuple[int, ...]) -> bool:
        if any(_missing(rows[i][j]) for j in subset):
            return False
        return all(
            any(_missing(rows[o][j]) or rows[o][j] != rows[i][j] for j in subset)
            for o in range(len(rows))
            if o != i
        )

    result = []
    for i in range(len(rows)):
        msus = []
        for size in range(1, len(keys) + 1):
            for subset in combinations(range(len(keys)), size):
                if unique(i, subset) and not any(
                    unique(i, smaller)
                    for k in range(1, size)
                    for smaller in combinations(subset, k)
                ):
                    msus.append(tuple(keys[j] for j in subset))
        result.append(msus)
    return result


def naive_l_diversity(values: list[object], constant: float = 2.0) -> tuple[int, float, int]:
    """Distinct, entropy and recursive l-diversity of one class's sensitive values."""
    observed = [v for v in values if not _missing(v)]
    missing = len(values) - len(observed)
    counts = Counter(observed)
    if not counts:
        return 0, 1.0, 0
    shares = [c / len(values) for c in counts.values()]
    if missing:
        shares.append(missing / len(values))
    entropy = math.exp(-sum(p * math.log(p) for p in shares))
    ranked = sorted(counts.values(), reverse=True)
    recursive = 1
    for level in range(2, len(ranked) + 1):
        if ranked[0] < constant * sum(ranked[level - 1 :]):
            recursive = level
    return len(counts) + (1 if missing else 0), entropy, recursive
