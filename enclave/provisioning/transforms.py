"""Row filters and transformations of one Arrow batch (Arrow compute: bounded memory).

Filters run on the raw values, then transformations in declared order, then dropped variables
are removed. Each function is pure: a batch in, a batch out.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from enclave.core.exceptions import ValidationError
from enclave.provisioning.spec import DatasetRules, Transform


def apply_rules(batch: pa.RecordBatch, rules: DatasetRules) -> pa.RecordBatch:
    """Filter, transform and drop according to ``rules``."""
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
    for t in rules.transforms:
        if t.op == "drop":
            continue
        i = names.index(t.variable)
        arrays[i] = transform_array(arrays[i], t)
        fields[i] = pa.field(t.variable, arrays[i].type)
    keep_at = [i for i, n in enumerate(names) if n not in rules.dropped]
    return pa.RecordBatch.from_arrays([arrays[i] for i in keep_at],
                                      schema=pa.schema([fields[i] for i in keep_at]))


def transform_array(array: pa.Array, t: Transform) -> pa.Array:
    """One transformation of one column; a type it does not apply to is a ValidationError."""
    kind = array.type
    try:
        if t.op in ("year", "year_month"):
            if not (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
                raise TypeError
            if t.op == "year":
                return pc.cast(pc.year(array), pa.int16())
            if pa.types.is_date(kind):
                array = pc.cast(array, pa.timestamp("s"))
            return pc.strftime(array, format="%Y-%m")
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
