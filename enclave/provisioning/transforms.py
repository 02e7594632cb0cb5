"""Row filters and transformations of one Arrow batch (Arrow compute: bounded memory).

Filters run on the raw values, then transformations in declared order, then dropped variables
are removed. Each function is pure: a batch in, a batch out; a :class:`RecodingStats` given to
:func:`apply_rules` accumulates, batch after batch, what the recodings changed (for the risk
report), in memory bounded by the number of transformations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from enclave.core.exceptions import ValidationError
from enclave.provisioning.spec import DatasetRules, Transform

_NUMERIC_OPS = frozenset({"top_bottom", "round"})


@dataclass
class _Moments:
    """Running count, sum and sum of squares of the non-missing values of one variable."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, array: pa.Array) -> None:
        values = pc.cast(array, pa.float64())
        self.n += len(values) - values.null_count
        self.total += float(pc.sum(values).as_py() or 0.0)
        self.squares += float(pc.sum(pc.multiply(values, values)).as_py() or 0.0)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        if self.n < 2:
            return None
        return max(self.squares - self.total * self.total / self.n, 0.0) / (self.n - 1)


@dataclass
class RecodingStats:
    """What filters and recodings changed over a whole streamed dataset.

    Per transformation: ``values`` (non-missing inputs) and ``changed`` (those it altered; a
    recoding to year, year-month or département alters each one). Per numeric variable only
    top/bottom coded or rounded: the mean and variance (``n - 1``) before and after and its
    IL1s contribution ``1/n sum |x - x'| / (sqrt(2) S)`` (Mateo-Sanz et al. 2004, as
    :func:`anonymization.protection.il1s_by_variable`), from running sums, so memory stays
    bounded. Correlations are not accumulated here.
    """

    rows_in: int = 0
    rows_out: int = 0
    values: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    before: dict[str, _Moments] = field(default_factory=dict)
    after: dict[str, _Moments] = field(default_factory=dict)
    absolute_change: dict[str, float] = field(default_factory=dict)

    def to_dict(self, rules: DatasetRules) -> dict[str, Any]:
        """The report's ``recodings`` section: rows filtered, and each transformation."""
        moments = {}
        for name, before in self.before.items():
            after = self.after[name]
            sd = math.sqrt(before.variance) if before.variance else 0.0
            il1s = (self.absolute_change[name] / (math.sqrt(2.0) * sd) / before.n
                    if sd > 0 and before.n else (0.0 if not self.absolute_change[name]
                                                 else None))
            moments[name] = {"mean_before": before.mean, "mean_after": after.mean,
                             "variance_before": before.variance,
                             "variance_after": after.variance, "il1s": il1s}
        return {"rows_in": self.rows_in, "rows_out": self.rows_out,
                "rows_filtered_out": self.rows_in - self.rows_out,
                "transforms": [{**t.to_dict(), "values": self.values[i],
                                "changed": self.changed[i]}
                               for i, t in enumerate(rules.transforms)
                               if i < len(self.values)],
                "numeric": moments}


def apply_rules(batch: pa.RecordBatch, rules: DatasetRules,
                stats: RecodingStats | None = None) -> pa.RecordBatch:
    """Filter, transform and drop according to ``rules`` (counting into ``stats``)."""
    if stats is not None:
        stats.rows_in += batch.num_rows
        if not stats.values:
            stats.values = [0] * len(rules.transforms)
            stats.changed = [0] * len(rules.transforms)
    if rules.filters:
        mask = None
        for f in rules.filters:
            column = batch.column(f.variable)
            try:
                values = pa.array(list(f.values)).cast(column.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise ValidationError(f"filter on {f.variable!r}: values {list(f.values)!r} "
                                      f"do not fit its type {column.type}") from None
            keep = pc.fill_null(pc.is_in(column, value_set=values), False)
            mask = keep if mask is None else pc.and_(mask, keep)
        batch = batch.filter(mask)
    names = batch.schema.names
    arrays = list(batch.columns)
    fields = list(batch.schema)
    numeric = [n for n in _numeric_only(rules) if n in names and (
        pa.types.is_integer(batch.schema.field(n).type)
        or pa.types.is_floating(batch.schema.field(n).type))]
    if stats is not None:
        stats.rows_out += batch.num_rows
        for name in numeric:
            stats.before.setdefault(name, _Moments()).add(arrays[names.index(name)])
    raw = {name: arrays[names.index(name)] for name in numeric}
    for position, t in enumerate(rules.transforms):
        if t.op == "drop":
            continue
        i = names.index(t.variable)
        old = arrays[i]
        arrays[i] = transform_array(old, t)
        fields[i] = pa.field(t.variable, arrays[i].type)
        if stats is not None:
            present = len(old) - old.null_count
            stats.values[position] += present
            if t.op in _NUMERIC_OPS:
                differs = pc.not_equal(pc.cast(old, pa.float64()),
                                       pc.cast(arrays[i], pa.float64()))
                stats.changed[position] += int(pc.sum(differs).as_py() or 0)
            else:
                stats.changed[position] += present
    if stats is not None:
        for name, original in raw.items():
            final = arrays[names.index(name)]
            stats.after.setdefault(name, _Moments()).add(final)
            gap = pc.abs(pc.subtract(pc.cast(final, pa.float64()),
                                     pc.cast(original, pa.float64())))
            stats.absolute_change[name] = (stats.absolute_change.get(name, 0.0)
                                           + float(pc.sum(gap).as_py() or 0.0))
    keep_at = [i for i, n in enumerate(names) if n not in rules.dropped]
    return pa.RecordBatch.from_arrays([arrays[i] for i in keep_at],
                                      schema=pa.schema([fields[i] for i in keep_at]))


def _numeric_only(rules: DatasetRules) -> list[str]:
    """Variables recoded only by numeric operations (their moments are comparable)."""
    ops: dict[str, set[str]] = {}
    for t in rules.transforms:
        ops.setdefault(t.variable, set()).add(t.op)
    return [name for name, kinds in ops.items() if kinds <= _NUMERIC_OPS]


def _year_month(array: pa.Array) -> pa.Array:
    """``"YYYY-MM"`` of dates or timestamps (a zoned timestamp in its own time zone, as
    ``strftime`` would give): the few distinct months are formatted once and mapped back with
    ``index_in``/``take``, about ten times faster than ``strftime`` on every row."""
    codes = pc.add(pc.multiply(pc.cast(pc.year(array), pa.int32()), 100),
                   pc.cast(pc.month(array), pa.int32()))
    distinct = pc.drop_null(pc.unique(codes))
    labels = pa.array([f"{c // 100:04d}-{c % 100:02d}" for c in distinct.to_pylist()],
                      pa.string())
    return labels.take(pc.index_in(codes, value_set=distinct))


def transform_array(array: pa.Array, t: Transform) -> pa.Array:
    """One transformation of one column; a type it does not apply to is a ValidationError."""
    kind = array.type
    try:
        if t.op in ("year", "year_month"):
            if not (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
                raise TypeError
            if t.op == "year":
                return pc.cast(pc.year(array), pa.int16())
            return _year_month(array)
        if t.op == "departement":
            if not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
                raise TypeError
            overseas = pc.starts_with(array, "97")
            return pc.if_else(overseas, pc.utf8_slice_codeunits(array, 0, 3),
                              pc.utf8_slice_codeunits(array, 0, 2))
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise TypeError
        if t.op == "top_bottom":
            out = array
            top, bottom = t.param("top"), t.param("bottom")
            if top is not None:
                limit = pa.scalar(top).cast(kind, safe=False)
                out = pc.if_else(pc.greater(out, limit), limit, out)
            if bottom is not None:
                limit = pa.scalar(bottom).cast(kind, safe=False)
                out = pc.if_else(pc.less(out, limit), limit, out)
            return out
        if t.op == "round":
            base = float(t.param("base") or 1)
            rounded = pc.multiply(pc.round(pc.divide(pc.cast(array, pa.float64()), base),
                                           round_mode="half_up"), base)
            return pc.cast(rounded, kind, safe=False) if pa.types.is_integer(kind) else rounded
    except TypeError:
        raise ValidationError(f"transform {t.op!r} does not apply to {t.variable!r} "
                              f"of type {kind}") from None
    raise ValidationError(f"unknown transform {t.op!r}")
