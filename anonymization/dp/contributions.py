"""Contribution bounding: keep at most ``max_contributions`` rows (events) per pupil.

Differential privacy protects a *unit*: here a pupil, with everything they contributed. In
event-level data (learning traces, several assessments) one pupil owns many rows, so the
sensitivity of a count is the largest number of rows a pupil may have; that number must be a
public bound ``m`` fixed in advance, not read from the data. Rows beyond ``m`` per pupil are
dropped, and which rows are kept is a uniform random sample without replacement, so that no
order of the data (the first events, the longest sessions) is favoured. After bounding, adding
or removing one pupil changes at most ``m`` rows, and every sensitivity in
:mod:`anonymization.dp.queries` is ``m`` times the sensitivity for one row (Dwork & Roth 2014,
section 2.3, group privacy; Wilson et al., *Differentially private SQL with bounded user
contribution*, PoPETs 2020).

The sample is drawn with the caller's ``numpy.random.Generator`` (explicit and reproducible
for the selection of rows); the DP noise itself never uses it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anonymization.dp._inputs import (
    check_column,
    check_frame,
    check_max_contributions,
    check_no_missing,
    check_rng,
)
from anonymization.exceptions import DPParameterError


def _ranks_within_pupil(codes: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows (in the given order) belong to the same pupil."""
    n = codes.size
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    lengths = np.diff(np.r_[starts, n])
    ranks_sorted = np.arange(n) - np.repeat(starts, lengths)
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = ranks_sorted
    return ranks


def kept_rows(data: pd.DataFrame, pupil: str, max_contributions: int,
              rng: np.random.Generator | None = None, *,
              function: str = "kept_rows") -> np.ndarray | None:
    """Positions of the rows kept by :func:`bound_contributions`, or None when all are kept."""
    data = check_frame(function, data)
    m = check_max_contributions(function, max_contributions)
    rng = check_rng(function, rng)
    ids = check_column(function, data, pupil)
    check_no_missing(function, ids)
    codes, _ = pd.factorize(ids, sort=False)
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size == 0 or np.bincount(codes).max() <= m:
        return None
    if rng is None:
        raise DPParameterError(
            function, "rng", "a numpy.random.Generator when a pupil has more than "
            "max_contributions rows (the rows kept are drawn at random)", None)
    permutation = rng.permutation(codes.size)
    keep_in_permuted_order = _ranks_within_pupil(codes[permutation]) < m
    keep = np.zeros(codes.size, dtype=bool)
    keep[permutation[keep_in_permuted_order]] = True
    return np.flatnonzero(keep)


def bound_contributions(data: pd.DataFrame, pupil: str, max_contributions: int,
                        rng: np.random.Generator | None = None, *,
                        function: str = "bound_contributions") -> pd.DataFrame:
    """The rows of ``data`` with at most ``max_contributions`` rows per value of ``pupil``.

    Rows kept are a uniform random sample without replacement within each pupil (a random
    permutation by ``rng``, then the first ``m`` rows of each pupil in that order) and keep
    their original order. When no pupil exceeds the bound nothing is drawn and ``rng`` may be
    None; otherwise a ``numpy.random.Generator`` is required. A missing pupil identifier is
    refused: it would hide how many rows one pupil contributes.
    """
    kept = kept_rows(data, pupil, max_contributions, rng, function=function)
    return data if kept is None else data.iloc[kept]
