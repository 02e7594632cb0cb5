"""Builders of keys, identifier columns, event batches and Parquet files for the tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))


def reference_pseudonym(value: str | int, key: bytes = KEY) -> str:
    """The formula written out with the standard library, one value at a time (per-row)."""
    digest = hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()


def pupil_ids(count: int, *, seed: int = 0) -> list[str]:
    """`count` distinct 11-character INE-like identifiers (10 digits and a letter)."""
    rng = np.random.default_rng(seed)
    numbers = rng.choice(10**10, size=count, replace=False)
    letters = rng.integers(ord("A"), ord("Z") + 1, size=count)
    return [f"{n:010d}{chr(c)}" for n, c in zip(numbers, letters, strict=True)]


def events_table(rows: int, pupils: int, *, seed: int = 0) -> pa.Table:
    """Learning-trace events: pupil identifier, timestamp, verb, score, in time order."""
    rng = np.random.default_rng(seed)
    ids = pa.array(pupil_ids(pupils, seed=seed), pa.string())
    return pa.table(
        {
            "event_id": pa.array(np.arange(rows, dtype=np.int64)),
            "ine": ids.take(pa.array(rng.integers(0, pupils, size=rows))),
            "ts": pa.array(
                np.sort(rng.integers(1_700_000_000_000, 1_730_000_000_000, size=rows)),
                pa.timestamp("ms", tz="Europe/Paris"),
            ),
            "verb": pa.array(rng.choice(["answered", "completed", "viewed"], size=rows)),
            "score": pa.array(rng.integers(0, 101, size=rows), pa.int16()),
        }
    )


def write_events(
    path: Path, rows: int, pupils: int, *, row_group_size: int, seed: int = 0
) -> pa.Table:
    """Write `events_table` to `path` in row groups of `row_group_size`; return the table."""
    table = events_table(rows, pupils, seed=seed)
    pq.write_table(table, path, row_group_size=row_group_size)
    return table
