"""l-diversity of sensitive variables inside the equivalence classes the key variables define.

k-anonymity hides a record among ``k`` others but not its sensitive value when the class shares
it; l-diversity asks that each class hold ``l`` "well represented" sensitive values
(Machanavajjhala, Kifer, Gehrke & Venkitasubramaniam 2007, "l-Diversity: Privacy beyond
k-anonymity", ACM TKDD 1(1)). As sdcMicro's ``ldiversity(obj, keyVars, ldiv_index,
l_recurs_c = 2)`` reports them (reference manual ``measure_risk``/``ldiversity``; Templ,
Kowarik & Meindl 2015, J. Stat. Softw. 67(4), section 3.4), for a class of ``N`` records whose
observed sensitive values have counts ``r_1 >= r_2 >= ... >= r_m``:

* distinct l-diversity: ``m``, the number of distinct sensitive values;
* entropy l-diversity: ``exp(-sum_s p_s log p_s)`` with ``p_s = r_s / N``, the exponential of
  the class's entropy (natural log), so a class is entropy l-diverse when it is ``>= l``;
* recursive (c, l)-diversity: the largest ``l`` such that ``r_1 < c (r_l + ... + r_m)``
  (1 when no ``l >= 2`` qualifies), ``c = recursive_constant``, default 2.

A missing sensitive value counts, as sdcMicro's ``missing`` code does, as one extra category in
the distinct count and the entropy when the class has at least one observed value, and never in
the recursive measure. A class with no observed value has distinct 0, entropy 1, recursive 0.

With two or more sensitive variables sdcMicro adds multi-attribute l-diversity
(Machanavajjhala et al. 2007, section 4.3): for each sensitive variable, the class is cut into
sub-classes by the values of the *other* sensitive variables; the entropy and recursive measures
of the variable are computed in each sub-class, and ``multi_entropy`` / ``multi_recursive`` are
their minimum over sub-classes and variables.

Classes are records with identical key values, a missing key value being a value of its own, as
in sdcMicro's l-diversity (it does not use ``freqCalc``'s "missing matches anything" rule).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from anonymization.exceptions import InvalidParameterError
from anonymization.risk._grouping import (
    column_codes,
    combine,
    dense_groups,
    frame_codes,
    group_rows,
)
from anonymization.risk._inputs import check_frame, check_keys, check_sensitive

__all__ = ["l_diversity"]


def _check_constant(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidParameterError(
            "recursive_constant", "a number > 0 (the c of recursive (c, l)-diversity)", value
        )
    return float(value)


def _class_diversity(
    groups: np.ndarray, n_groups: int, codes: np.ndarray, card: int, constant: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct, entropy and recursive l-diversity of each class (dense ids ``groups``)."""
    size = np.bincount(groups, minlength=n_groups)
    observed = codes >= 0
    missing = np.bincount(groups[~observed], minlength=n_groups)
    pairs = groups[observed] * max(card, 1) + codes[observed]
    unique_pairs, counts = np.unique(pairs, return_counts=True)
    pair_group = unique_pairs // max(card, 1)
    distinct = np.bincount(pair_group, minlength=n_groups)

    share = counts / size[pair_group]
    p_log_p = np.bincount(pair_group, weights=share * np.log(share), minlength=n_groups).astype(
        np.float64  # bincount of nothing is int64
    )
    missing_category = (missing > 0) & (distinct > 0)
    missing_share = missing[missing_category] / size[missing_category]
    p_log_p[missing_category] += missing_share * np.log(missing_share)
    entropy = np.exp(-p_log_p)

    # recursive: counts sorted decreasingly within each class; suffix sums r_l + ... + r_m
    order = np.lexsort((-counts, pair_group))
    sorted_counts = counts[order].astype(np.float64)
    sorted_groups = pair_group[order]
    starts = np.flatnonzero(np.diff(sorted_groups, prepend=-1))  # first row of each class
    start_of = np.zeros(n_groups, dtype=np.int64)
    start_of[sorted_groups[starts]] = starts
    rank = np.arange(len(sorted_counts)) - start_of[sorted_groups]
    cumulative = np.cumsum(sorted_counts)
    before = np.zeros(n_groups)
    before[sorted_groups[starts]] = cumulative[starts] - sorted_counts[starts]
    total = np.bincount(sorted_groups, weights=sorted_counts, minlength=n_groups)
    suffix = total[sorted_groups] - (cumulative - sorted_counts - before[sorted_groups])
    largest = np.zeros(n_groups)
    largest[sorted_groups[starts]] = sorted_counts[starts]
    holds = (rank >= 1) & (constant * suffix > largest[sorted_groups])
    recursive = 1 + np.bincount(sorted_groups, weights=holds, minlength=n_groups).astype(np.int64)
    recursive[distinct == 0] = 0
    return distinct + missing_category, entropy, recursive


def l_diversity(
    data: pd.DataFrame,
    keys: str | Iterable[str],
    sensitive: str | Iterable[str],
    *,
    recursive_constant: float = 2.0,
) -> pd.DataFrame:
    """Per-record distinct, entropy and recursive (c, l)-diversity of each sensitive variable.

    sdcMicro ``ldiversity(data, keyVars, ldiv_index, l_recurs_c)``: the measures of the module
    docstring, computed on the record's class (identical key values) and repeated on each of
    its records. Columns ``<var>_distinct``, ``<var>_entropy``, ``<var>_recursive`` for each
    sensitive variable, plus ``multi_entropy`` and ``multi_recursive`` when there are two or
    more; the index is the data's.
    """
    data = check_frame(data)
    key_names = check_keys(data, keys)
    sensitive_names = check_sensitive(data, sensitive, key_names)
    constant = _check_constant(recursive_constant)
    matrix, cards = frame_codes(data, key_names)
    groups, sizes = group_rows(matrix, cards)
    n_groups = len(sizes)

    coded = [column_codes(data[name]) for name in sensitive_names]
    columns: dict[str, np.ndarray] = {}
    for name, (codes, card) in zip(sensitive_names, coded, strict=True):
        distinct, entropy, recursive = _class_diversity(groups, n_groups, codes, card, constant)
        columns[f"{name}_distinct"] = distinct[groups]
        columns[f"{name}_entropy"] = entropy[groups]
        columns[f"{name}_recursive"] = recursive[groups]

    if len(coded) >= 2:
        multi_entropy = np.full(n_groups, np.inf)
        multi_recursive = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
        for i, (codes, card) in enumerate(coded):
            others = [(c + 1, k + 1) for j, (c, k) in enumerate(coded) if j != i]
            sub_codes, space = combine(
                [groups] + [c for c, _ in others], [n_groups] + [k for _, k in others]
            )
            sub_groups, sub_sizes = dense_groups(sub_codes, space)
            _, entropy, recursive = _class_diversity(
                sub_groups, len(sub_sizes), codes, card, constant
            )
            parent = np.zeros(len(sub_sizes), dtype=np.int64)
            parent[sub_groups] = groups  # every record of a sub-class is in the same class
            np.minimum.at(multi_entropy, parent, entropy)
            np.minimum.at(multi_recursive, parent, recursive)
        columns["multi_entropy"] = multi_entropy[groups]
        columns["multi_recursive"] = multi_recursive[groups]
    return pd.DataFrame(columns, index=data.index)
