"""The generation run: draws pupils block by block and streams the four datasets to Parquet.

Pupils are drawn in blocks of :data:`BLOCK_PUPILS`, each from its own seeded stream, and
written chunk by chunk (``chunk_pupils`` rounded up to whole blocks); learning traces are
flushed every :data:`TRACE_BATCH_EVENTS` statements. Memory is thus bounded by the chunk and
the trace batch, whatever the number of pupils, and the data do not depend on the chunk size.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from enclave.demo_data.evaluations import draw_evaluations, evaluations_table
from enclave.demo_data.exams import draw_exams, exams_table
from enclave.demo_data.exceptions import DemoDataError
from enclave.demo_data.metadata import DATASETS, ELEVES, EVALUATIONS_REPERES, EXAMENS, TRACES_XAPI
from enclave.demo_data.pupils import PupilBlock, draw_pupils, eleves_table
from enclave.demo_data.traces import draw_traces, traces_table
from enclave.demo_data.universe import (
    BLOCK_PUPILS,
    STREAM_EVALUATIONS,
    STREAM_EXAMS,
    STREAM_PUPILS,
    STREAM_TRACES,
    Universe,
    build_universe,
    rng_for,
)
from enclave.demo_data.writer import DatasetWriter, WrittenDataset, check_target

MAX_PUPILS = 100_000_000
MAX_TRACES_PER_PUPIL = 1_000.0
TRACE_BATCH_EVENTS = 1_000_000

Progress = Callable[[str, int], None]


def _integer(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DemoDataError(f"{name} must be an integer, got {value!r}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise DemoDataError(f"{name} must be {bound}, got {number}")
    return number


def _traces_per_pupil(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DemoDataError(f"traces_per_pupil must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= MAX_TRACES_PER_PUPIL):
        raise DemoDataError("traces_per_pupil must be a finite number between 0 and "
                            f"{MAX_TRACES_PER_PUPIL:g}, got {value!r}")
    return number


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _block(world: Universe, seed: int, pupils: int, block: int) -> PupilBlock:
    index = np.arange(block * BLOCK_PUPILS, min((block + 1) * BLOCK_PUPILS, pupils),
                      dtype=np.int64)
    return draw_pupils(index, world, rng_for(seed, STREAM_PUPILS, block))


def generate(raw_dir: Path | str, *, pupils: int = 2000, seed: int = 20261128,
             traces_per_pupil: float = 20.0, chunk_pupils: int = 200_000,
             progress: Progress | None = None) -> list[WrittenDataset]:
    """Write the synthetic DEPP datasets into ``raw_dir``, each folder published atomically.

    Same arguments give the same data, whatever ``chunk_pupils`` (a memory bound, rounded up
    to whole blocks of 2048 pupils). ``progress(dataset, rows_so_far)`` is called after each
    write. Bad arguments raise :class:`DemoDataError` (a ``ValueError``) before any write.
    """
    pupils = _integer("pupils", pupils, 1, MAX_PUPILS)
    seed = _integer("seed", seed, 0)
    tpp = _traces_per_pupil(traces_per_pupil)
    chunk_pupils = _integer("chunk_pupils", chunk_pupils, 1)
    if progress is not None and not callable(progress):
        raise DemoDataError(f"progress must be a callable or None, got {progress!r}")
    if not isinstance(raw_dir, str | os.PathLike):
        raise DemoDataError(f"raw_dir must be a path, got {raw_dir!r}")
    raw_dir = Path(raw_dir)
    if raw_dir.exists() and not raw_dir.is_dir():
        raise DemoDataError(f"raw_dir {raw_dir} exists and is not a folder")
    raw_dir.mkdir(parents=True, exist_ok=True)
    for spec in DATASETS:
        check_target(raw_dir, spec.dataset)

    def report(writer: DatasetWriter, dataset: str) -> None:
        if progress is not None:
            progress(dataset, writer.rows)

    world = build_universe(seed, pupils)
    blocks = math.ceil(pupils / BLOCK_PUPILS)
    per_chunk = math.ceil(chunk_pupils / BLOCK_PUPILS)
    writers: list[DatasetWriter] = []
    try:
        for spec in DATASETS:
            writers.append(DatasetWriter(raw_dir, spec, seed=seed))
        eleves, evaluations, exams, traces = writers
        for first in range(0, blocks, per_chunk):
            block_ids = range(first, min(first + per_chunk, blocks))
            chunk = [_block(world, seed, pupils, b) for b in block_ids]
            eleves.write(eleves_table(PupilBlock.concat(chunk), world))
            report(eleves, ELEVES.dataset)
            rows = [draw_evaluations(p, rng_for(seed, STREAM_EVALUATIONS, b))
                    for b, p in zip(block_ids, chunk, strict=True)]
            evaluations.write(evaluations_table(_concat(rows), world))
            report(evaluations, EVALUATIONS_REPERES.dataset)
            rows = [draw_exams(p, world, rng_for(seed, STREAM_EXAMS, b))
                    for b, p in zip(block_ids, chunk, strict=True)]
            exams.write(exams_table(_concat(rows), world))
            report(exams, EXAMENS.dataset)
            batch: list[dict[str, np.ndarray]] = []
            for b, p in zip(block_ids, chunk, strict=True):
                batch.append(draw_traces(p, world, rng_for(seed, STREAM_TRACES, b), tpp))
                if sum(len(r["ine"]) for r in batch) >= TRACE_BATCH_EVENTS:
                    traces.write(traces_table(_concat(batch)))
                    report(traces, TRACES_XAPI.dataset)
                    batch = []
            if batch:
                traces.write(traces_table(_concat(batch)))
                report(traces, TRACES_XAPI.dataset)
        return [writer.commit() for writer in writers]
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
