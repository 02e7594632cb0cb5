"""Multivariate microaggregation by MDAV (sdcMicro ``microaggregation(method = "mdav")``).

Microaggregation replaces each record's values by the mean of a group of at least ``k``
similar records, so every released vector is shared by ``k`` records (Hundepool et al. 2012,
3.4.5; Templ, Kowarik & Meindl 2015, section 3.5). MDAV, Maximum Distance to Average Vector
(Domingo-Ferrer & Mateo-Sanz 2002, IEEE TKDE 14(1); the IHSN code sdcMicro runs), forms the
groups on the standardised variables (each divided by its standard deviation, the population
one, as sdcMicro weights squared distances by 1 / variance):

    while at least 2k records remain:
        c = mean of the remaining records
        r = the remaining record farthest from c;  s = the one farthest from r
        group the k records nearest r (r among them) and remove them
        if at least 2k records remained before: also group the k nearest s and remove them
    the remaining records (k to 2k - 1 of them) form the last group

Every group has between ``k`` and ``2k - 1`` records (fewer only if the whole data, or a
stratum, has fewer than ``2k``: then one group of them all, which must reach ``k``). The
released value is the group mean of the original, unstandardised values, so each variable's
total (hence mean) is unchanged up to floating-point rounding. Distances are Euclidean on the
standardised values; ties are broken deterministically (same data, same groups).

Differences from sdcMicro: missing values are refused (sdcMicro gives them a distance
penalty), and only MDAV is implemented among sdcMicro's microaggregation methods.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anonymization.exceptions import ProtectionParameterError, TooFewRecordsError
from anonymization.protection._common import (
    check_columns,
    check_disjoint,
    check_frame,
    check_k,
    group_ids,
    numeric_values,
)

__all__ = ["MicroaggregationResult", "mdav_groups", "microaggregation"]

_METHOD = "microaggregation"
_REFRESH = 256
"""Iterations between two exact recomputations of the remaining records' sum."""


@dataclass(frozen=True)
class MicroaggregationResult:
    """Outcome of `microaggregation`: the aggregated data and each record's group number."""

    data: pd.DataFrame
    groups: np.ndarray
    k: int
    variables: tuple[Hashable, ...]

    @property
    def group_sizes(self) -> np.ndarray:
        """Number of records in each group (indexed by group number)."""
        return np.bincount(self.groups)


def _standardise(values: np.ndarray) -> np.ndarray:
    """Columns centred and divided by their population sd (left unscaled when constant)."""
    centred = values - values.mean(axis=0)
    sd = values.std(axis=0)
    return centred / np.where(sd > 0, sd, 1.0)


class _Remaining:
    """The records not yet grouped, packed at the front of column-major arrays."""

    def __init__(self, points: np.ndarray) -> None:
        self.columns = np.ascontiguousarray(points.T)  # (d, n): one contiguous row a variable
        self.ids = np.arange(points.shape[0], dtype=np.int64)
        self.size = points.shape[0]
        self._distance = np.empty(self.size)
        self._scratch = np.empty(self.size)
        self._sum = self.columns.sum(axis=1)
        self._removals = 0

    def distances(self, point: np.ndarray) -> np.ndarray:
        """Squared distances of the remaining records to `point` (a view, reused)."""
        n = self.size
        out, tmp = self._distance[:n], self._scratch[:n]
        out.fill(0.0)
        for column, centre in zip(self.columns, point, strict=True):
            np.subtract(column[:n], centre, out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            out += tmp
        return out

    def point(self, position: int) -> np.ndarray:
        return self.columns[:, position].copy()

    def centroid(self) -> np.ndarray:
        """Mean of the remaining records, from a running sum refreshed now and then (so
        rounding errors of the subtractions cannot accumulate)."""
        self._removals += 1
        if self._removals % _REFRESH == 0:
            self._sum = self.columns[:, : self.size].sum(axis=1)
        return self._sum / self.size

    @staticmethod
    def nearest(distance: np.ndarray, k: int) -> np.ndarray:
        """Positions of the k remaining records with the smallest `distance` (``argpartition``:
        ties are broken deterministically)."""
        if k >= len(distance):
            return np.arange(len(distance))
        return np.argpartition(distance, k - 1)[:k]

    def remove(self, positions: np.ndarray) -> np.ndarray:
        """Remove the records at `positions`; return their original row numbers.

        The survivors stay packed at the front: records from the tail fill the holes.
        """
        taken = self.ids[positions].copy()
        self._sum -= self.columns[:, positions].sum(axis=1)
        start = self.size - len(positions)
        in_tail = positions >= start
        tail_removed = np.zeros(len(positions), dtype=bool)
        tail_removed[positions[in_tail] - start] = True
        holes = np.sort(positions[~in_tail])
        movers = start + np.flatnonzero(~tail_removed)
        if len(holes):
            self.columns[:, holes] = self.columns[:, movers]
            self.ids[holes] = self.ids[movers]
        self.size = start
        return taken


def mdav_groups(points: np.ndarray, k: int) -> np.ndarray:
    """Group number (0, 1, ...) of each row of `points` (n x d, finite) under MDAV with `k`.

    The rows are standardised first (module docstring); groups are numbered in the order
    MDAV forms them.
    """
    k = check_k("mdav_groups", k)
    values = np.asarray(points, dtype=np.float64)
    if values.ndim != 2:
        raise ProtectionParameterError("mdav_groups", "points", "a 2-d array (n x d)", values.ndim)
    n = values.shape[0]
    groups = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return groups
    if n < k:
        raise TooFewRecordsError("mdav_groups", n, k, "the data")
    remaining = _Remaining(_standardise(values))
    group = 0
    while remaining.size >= 2 * k:
        two = remaining.size >= 3 * k
        centre = remaining.centroid()
        r_point = remaining.point(int(np.argmax(remaining.distances(centre))))
        from_r = remaining.distances(r_point)
        s_point = remaining.point(int(np.argmax(from_r)))
        groups[remaining.remove(remaining.nearest(from_r, k))] = group
        group += 1
        if two:
            from_s = remaining.distances(s_point)
            groups[remaining.remove(remaining.nearest(from_s, k))] = group
            group += 1
    if remaining.size:
        groups[remaining.remove(np.arange(remaining.size))] = group
    return groups


def microaggregation(
    data: pd.DataFrame,
    variables: Sequence[Hashable],
    k: int = 3,
    *,
    method: str = "mdav",
    strata: Hashable | Sequence[Hashable] | None = None,
) -> MicroaggregationResult:
    """Replace `variables` by their means over MDAV groups of at least `k` similar records.

    sdcMicro ``microaggregation(obj, variables, aggr = k, method = "mdav")``: multivariate
    (the groups are formed on all `variables` together); with `strata`, groups are formed
    within each stratum. The variables must be numeric and complete; they come back as
    float64. ``groups`` numbers the groups over the whole data. The input is never modified.
    """
    frame = check_frame(_METHOD, data)
    if method != "mdav":
        raise ProtectionParameterError(_METHOD, "method", "'mdav' (the only method here)", method)
    if isinstance(variables, str) or not isinstance(variables, Sequence):
        variables = [variables]
    names = check_columns(_METHOD, frame, "variables", variables)
    if isinstance(strata, str) or not isinstance(strata, Sequence):
        strata = None if strata is None else [strata]
    strata_names = check_columns(_METHOD, frame, "strata", strata, required=False)
    check_disjoint(_METHOD, "variables", names, "strata", strata_names)
    k = check_k(_METHOD, k)
    values = (
        np.column_stack([numeric_values(_METHOD, frame, column, complete=True) for column in names])
        if len(frame)
        else np.empty((0, len(names)))
    )
    stratum, labels = group_ids(frame, strata_names)
    sizes = np.bincount(stratum, minlength=len(labels)) if len(frame) else np.zeros(0, np.int64)
    if len(sizes) and sizes.min() < k:
        smallest = int(np.argmin(sizes))
        where = f"stratum {labels[smallest]!r}" if strata_names else "the data"
        raise TooFewRecordsError(_METHOD, int(sizes[smallest]), k, where)

    groups = np.full(len(frame), -1, dtype=np.int64)
    offset = 0
    for s in range(len(sizes)):
        rows = np.flatnonzero(stratum == s)
        local = mdav_groups(values[rows], k)
        groups[rows] = local + offset
        offset += int(local.max()) + 1
    result = frame.copy(deep=False)
    if len(frame):
        counts = np.bincount(groups)
        for j, column in enumerate(names):
            means = np.bincount(groups, weights=values[:, j]) / counts
            result[column] = pd.Series(means[groups], index=frame.index, name=column)
    else:
        for column in names:
            result[column] = frame[column].astype(np.float64)
    return MicroaggregationResult(data=result, groups=groups, k=k, variables=tuple(names))
