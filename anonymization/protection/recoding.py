"""Global recoding and top/bottom coding (sdcMicro's ``globalRecode`` and ``topBotCoding``).

Global recoding replaces every value of a variable by a coarser category, the same way in all
records: numbers by the interval of fixed break points they fall in (R's ``cut``), categories
by a label map. It lowers the number of distinct key combinations, hence re-identification
risk, without touching individual records differently (Hundepool et al., "Statistical
Disclosure Control", 2012, section 3.4.2; Templ, Kowarik & Meindl 2015, J. Stat. Softw. 67(4),
section 3.1). Top and bottom coding caps the tails of a numeric variable, where the few
extreme values identify people (Hundepool et al. 2012, 3.4.3).

Unlike ``cut``, a value that no interval or map entry covers is an error, not a silent NA,
unless a ``default`` category is given: recoding must never lose values unnoticed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from numbers import Real
from typing import Literal

import numpy as np
import pandas as pd

from anonymization.exceptions import ProtectionParameterError, UnmappedValueError
from anonymization.protection._common import (
    check_columns,
    check_frame,
    check_real,
    numeric_values,
)

__all__ = ["global_recode", "interval_labels", "top_bottom_coding"]

_METHOD = "global_recode"
_LABEL_DIGITS = 8
"""Significant digits of automatic interval labels, as R's ``cut(dig.lab = 8)`` in sdcMicro."""


def interval_labels(
    breaks: Sequence[float], *, right: bool = True, include_lowest: bool = False
) -> list[str]:
    """Labels of the intervals cut by `breaks`, in R's notation: ``"(a,b]"`` or ``"[a,b)"``.

    Numbers are written with 8 significant digits (``%.8g``, as R's ``formatC`` with
    ``dig.lab = 8``), more if needed to keep labels distinct. With `include_lowest` the first
    interval (right-closed) or the last one (left-closed) is closed on both sides, as in R.
    """
    edges = [float(b) for b in breaks]
    for digits in range(_LABEL_DIGITS, 18):
        text = [f"{b:.{digits}g}" for b in edges]
        if len(set(text)) == len(text):
            break
    count = len(edges) - 1
    labels = []
    for i in range(count):
        if right:
            opening = "[" if include_lowest and i == 0 else "("
            labels.append(f"{opening}{text[i]},{text[i + 1]}]")
        else:
            closing = "]" if include_lowest and i == count - 1 else ")"
            labels.append(f"[{text[i]},{text[i + 1]}{closing}")
    return labels


def _check_breaks(breaks: object) -> np.ndarray:
    if isinstance(breaks, str | bytes) or not isinstance(breaks, Sequence | np.ndarray):
        raise ProtectionParameterError(
            _METHOD, "breaks", "a sequence of at least two increasing finite numbers", breaks
        )
    values = list(breaks)
    if len(values) < 2 or any(
        isinstance(b, bool) or not isinstance(b, Real) or not np.isfinite(float(b)) for b in values
    ):
        raise ProtectionParameterError(
            _METHOD, "breaks", "a sequence of at least two increasing finite numbers", breaks
        )
    edges = np.asarray(values, dtype=np.float64)
    if not np.all(np.diff(edges) > 0):
        raise ProtectionParameterError(
            _METHOD, "breaks", "strictly increasing (each interval non-empty)", values
        )
    return edges


def _recode_numeric(
    series: pd.Series,
    values: np.ndarray,
    edges: np.ndarray,
    labels: Sequence[Hashable] | None,
    default: Hashable | None,
    right: bool,
    include_lowest: bool,
) -> pd.Series:
    count = len(edges) - 1
    if labels is None:
        names: list[Hashable] = list(
            interval_labels(edges.tolist(), right=right, include_lowest=include_lowest)
        )
    else:
        if isinstance(labels, str) or len(labels) != count:
            raise ProtectionParameterError(
                _METHOD, "labels", f"a sequence of {count} labels (one per interval)", labels
            )
        names = list(labels)
    # right-closed (a, b]: the number of breaks strictly below x; left-closed [a, b): at or below
    position = np.searchsorted(edges, values, side="left" if right else "right") - 1
    if include_lowest:
        boundary = edges[0] if right else edges[-1]
        position[values == boundary] = 0 if right else count - 1
    missing = np.isnan(values)
    outside = ~missing & ((position < 0) | (position >= count))
    categories = list(dict.fromkeys(names))
    if default is not None and default not in categories:
        categories.append(default)
    lookup = np.asarray([categories.index(name) for name in names] + [-1], dtype=np.int64)
    codes = lookup[np.where((position < 0) | (position >= count), count, position)]
    if outside.any():
        if default is None:
            raise UnmappedValueError(
                str(series.name),
                int(outside.sum()),
                f"outside the break range {'(' if right else '['}{edges[0]:g}, "
                f"{edges[-1]:g}{']' if right else ')'}",
            )
        codes[outside] = categories.index(default)
    codes[missing] = -1
    recoded = pd.Categorical.from_codes(codes, categories=categories, ordered=True)
    return pd.Series(recoded, index=series.index, name=series.name)


def _recode_mapping(
    series: pd.Series, mapping: Mapping[Hashable, Hashable], default: Hashable | None
) -> pd.Series:
    if not isinstance(mapping, Mapping):
        raise ProtectionParameterError(
            _METHOD, "mapping", "a mapping from old values to new labels", type(mapping).__name__
        )
    present = series.notna()
    covered = series.isin(list(mapping.keys()))
    unmapped = present & ~covered
    if unmapped.any() and default is None:
        distinct = pd.unique(series[unmapped])
        shown = ", ".join(repr(value) for value in distinct[:5])
        more = f" and {len(distinct) - 5} more" if len(distinct) > 5 else ""
        raise UnmappedValueError(
            str(series.name),
            int(unmapped.sum()),
            f"{len(distinct)} distinct value(s) absent from the map: {shown}{more}",
        )
    if isinstance(series.dtype, pd.CategoricalDtype):
        old = list(series.cat.categories)
        new = [mapping.get(c, default) for c in old]
        categories = list(dict.fromkeys(v for v in new if v is not None))
        if default is not None and default not in categories:
            categories.append(default)
        lookup = np.asarray(
            [categories.index(v) if v is not None else -1 for v in new] + [-1], dtype=np.int64
        )
        codes = lookup[series.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
        recoded = pd.Categorical.from_codes(
            codes, categories=categories, ordered=series.cat.ordered
        )
        return pd.Series(recoded, index=series.index, name=series.name)
    mapped = series.map(dict(mapping))
    if default is not None and unmapped.any():
        mapped = mapped.where(~unmapped.to_numpy(), default)
    return mapped


def global_recode(
    data: pd.DataFrame,
    column: Hashable,
    *,
    breaks: Sequence[float] | None = None,
    labels: Sequence[Hashable] | None = None,
    mapping: Mapping[Hashable, Hashable] | None = None,
    default: Hashable | None = None,
    right: bool = True,
    include_lowest: bool = False,
) -> pd.DataFrame:
    """Return a copy of `data` with `column` globally recoded (sdcMicro ``globalRecode``).

    Give exactly one of:

    * `breaks` (numeric column): value ``x`` goes to interval ``i`` when
      ``breaks[i] < x <= breaks[i+1]`` (right-closed, R's ``cut`` default), or
      ``breaks[i] <= x < breaks[i+1]`` with ``right=False``; `include_lowest` closes the
      first (last, when left-closed) interval at its outer edge, as in R. The result is an
      ordered categorical whose categories are `labels` (one per interval; repeated labels
      merge intervals) or, by default, R-style labels such as ``"(0,10]"``.
    * `mapping` (any column): each value is replaced by ``mapping[value]``; a categorical
      column stays categorical, with the new labels in the order of the old categories.

    Missing values stay missing. A non-missing value outside every interval, or absent from
    the map, raises `UnmappedValueError` unless `default` is given, which then labels it
    (and is added as the last category). The input is never modified.
    """
    frame = check_frame(_METHOD, data)
    check_columns(_METHOD, frame, "column", [column])
    if (breaks is None) == (mapping is None):
        raise ProtectionParameterError(
            _METHOD,
            "breaks/mapping",
            "exactly one of them (breaks for numbers, mapping for categories)",
            "both" if breaks is not None else "neither",
        )
    series = frame[column]
    if breaks is not None:
        edges = _check_breaks(breaks)
        values = numeric_values(_METHOD, frame, column)
        if np.isinf(values).any():
            raise ProtectionParameterError(
                _METHOD, "data", "finite numbers in the recoded column", "infinite values"
            )
        recoded = _recode_numeric(series, values, edges, labels, default, right, include_lowest)
    elif mapping is not None:
        if labels is not None:
            raise ProtectionParameterError(
                _METHOD, "labels", "None with a mapping (the map gives the labels)", labels
            )
        recoded = _recode_mapping(series, mapping, default)
    result = frame.copy(deep=False)
    result[column] = recoded
    return result


def top_bottom_coding(
    data: pd.DataFrame,
    column: Hashable,
    value: float,
    replacement: float,
    *,
    kind: Literal["top", "bottom"] = "top",
) -> pd.DataFrame:
    """Return a copy of `data` where values of `column` beyond `value` become `replacement`.

    sdcMicro ``topBotCoding``: with ``kind="top"`` every ``x > value`` is replaced, with
    ``kind="bottom"`` every ``x < value``; a value exactly at the limit is kept, and missing
    values stay missing. The column must be numeric; an integer column becomes float only if
    the replacement is not an integer.
    """
    method = "top_bottom_coding"
    frame = check_frame(method, data)
    check_columns(method, frame, "column", [column])
    if kind not in ("top", "bottom"):
        raise ProtectionParameterError(method, "kind", "'top' or 'bottom'", kind)
    limit = check_real(method, "value", value, None, None)
    new_value = check_real(method, "replacement", replacement, None, None)
    values = numeric_values(method, frame, column)
    beyond = values > limit if kind == "top" else values < limit
    series = frame[column]
    fill: float | int = new_value
    if float(replacement).is_integer() and pd.api.types.is_integer_dtype(series.dtype):
        fill = int(replacement)
    result = frame.copy(deep=False)
    result[column] = series.mask(pd.Series(beyond, index=series.index), fill)
    return result
