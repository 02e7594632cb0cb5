"""Post-randomisation (PRAM) of categorical variables (sdcMicro ``pram``).

PRAM (Gouweleeuw, Kooiman, Willenborg & de Wolf 1998, J. Official Statistics 14(4)) replaces
each record's category ``i`` by category ``j`` with probability ``P[i, j]``, independently
across records, from a Markov transition matrix ``P`` (entries >= 0, rows summing to 1). An
intruder can no longer trust any single value, while the analyst knows ``P`` and can correct
estimates for it.

**Invariant PRAM.** With ``p`` the vector of category proportions, a matrix ``R`` is invariant
when ``p R = p``: the expected frequencies after PRAM equal the observed ones, so tables need
no correction. Following sdcMicro (Kowarik, Templ, Meindl et al. 2012, LNCS 7556; Templ,
Kowarik & Meindl 2015, section 3.4): from a matrix ``P``, ``Q[k, j] = P[j, k] p_j /
sum_l(p_l P[l, k])`` (the probability of original ``j`` given randomised ``k``, Bayes), and
``R = P Q`` is invariant; ``R_s = alpha R + (1 - alpha) I`` stays invariant and moves fewer
records as ``alpha`` shrinks. sdcMicro's default ``P`` has, in row ``i``, a diagonal
``d_i ~ U(pd, 1)`` and ``(1 - d_i) / (L - 1)`` elsewhere (``L`` categories); ``pd = 0.8``
and ``alpha = 0.5`` by default.

Missing values are left missing and do not count in ``p``. With strata, each stratum gets its
own invariant matrix built from its own frequencies (and its own random ``P``), as sdcMicro
does; a matrix given by the caller is used in every stratum.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anonymization.exceptions import ProtectionParameterError, TransitionMatrixError
from anonymization.protection._common import (
    check_columns,
    check_disjoint,
    check_frame,
    check_generator,
    check_real,
    group_ids,
)

__all__ = [
    "PramResult",
    "default_transition_matrix",
    "invariant_matrix",
    "pram",
]

_METHOD = "pram"
ROW_SUM_TOLERANCE = 1e-9
"""How far from 1 a row of a given transition matrix may sum (sdcMicro: machine epsilon,
which refuses matrices typed with decimals such as 0.1, 0.2, 0.7)."""


@dataclass(frozen=True)
class PramResult:
    """Outcome of `pram`: the randomised data, the matrices used and the changes made.

    ``matrices[variable][stratum]`` is the transition matrix applied (rows: original category,
    columns: new category); a stratum is the tuple of its strata values, ``()`` without
    strata. ``changes[variable]`` counts the records whose value changed.
    """

    data: pd.DataFrame
    matrices: Mapping[Hashable, Mapping[tuple, pd.DataFrame]]
    changes: pd.Series


def invariant_matrix(
    transition: np.ndarray, frequencies: np.ndarray, alpha: float = 1.0
) -> np.ndarray:
    """The invariant matrix ``alpha P Q + (1 - alpha) I`` for category counts `frequencies`.

    ``Q[k, j] = P[j, k] p_j / sum_l p_l P[l, k]`` with ``p`` the proportions (Gouweleeuw et
    al. 1998; sdcMicro ``pram``). A column ``k`` that no observed category can reach gives
    ``Q[k] = e_k`` (it never matters for ``p``). All-zero frequencies give the identity.
    """
    matrix = np.asarray(transition, dtype=np.float64)
    counts = np.asarray(frequencies, dtype=np.float64)
    size = len(counts)
    if matrix.shape != (size, size):
        raise ProtectionParameterError(
            "invariant_matrix", "transition", f"a {size} x {size} matrix", matrix.shape
        )
    alpha = check_real("invariant_matrix", "alpha", alpha, 0.0, 1.0)
    identity = np.eye(size)
    total = counts.sum()
    if total <= 0:
        return identity
    p = counts / total
    reach = p @ matrix  # s_k: probability of ending in k
    backward = np.where(
        reach[:, None] > 0,
        matrix.T * p[None, :] / np.where(reach > 0, reach, 1.0)[:, None],
        identity,
    )
    invariant = matrix @ backward
    return alpha * invariant + (1.0 - alpha) * identity


def default_transition_matrix(
    frequencies: np.ndarray,
    rng: np.random.Generator,
    min_diagonal: float = 0.8,
    alpha: float = 0.5,
) -> np.ndarray:
    """sdcMicro's default PRAM matrix: invariant, from a random ``P`` with ``P[i,i] ~ U(pd, 1)``.

    Row ``i`` of ``P`` has ``d_i ~ U(min_diagonal, 1)`` on the diagonal and
    ``(1 - d_i) / (L - 1)`` elsewhere; the result is `invariant_matrix` ``(P, freq, alpha)``.
    """
    rng = check_generator("default_transition_matrix", rng)
    min_diagonal = check_real("default_transition_matrix", "min_diagonal", min_diagonal, 0, 1)
    size = len(frequencies)
    if size <= 1:
        return np.ones((size, size))
    diagonal = rng.uniform(min_diagonal, 1.0, size)
    base = np.repeat(((1.0 - diagonal) / (size - 1))[:, None], size, axis=1)
    np.fill_diagonal(base, diagonal)
    return invariant_matrix(base, frequencies, alpha)


def _categories(series: pd.Series) -> list[Hashable]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    present = pd.unique(series.dropna())
    try:
        return sorted(present.tolist())
    except TypeError:  # mixed types: keep the order of appearance
        return list(present.tolist())


def _checked_matrix(variable: str, matrix: object, observed: Sequence[Hashable]) -> pd.DataFrame:
    if not isinstance(matrix, pd.DataFrame):
        raise TransitionMatrixError(variable, f"got a {type(matrix).__name__}, not a DataFrame")
    if matrix.shape[0] != matrix.shape[1]:
        raise TransitionMatrixError(variable, f"it is {matrix.shape[0]} x {matrix.shape[1]}")
    if not matrix.index.equals(matrix.columns):
        raise TransitionMatrixError(variable, "row labels and column labels differ")
    if not matrix.index.is_unique:
        raise TransitionMatrixError(variable, "a category labels two rows")
    absent = [c for c in observed if c not in matrix.index]
    if absent:
        raise TransitionMatrixError(
            variable, f"{len(absent)} category(ies) of the data have no row"
        )
    try:
        values = matrix.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise TransitionMatrixError(variable, "it holds non-numeric entries") from None
    if not np.isfinite(values).all() or (values < 0).any():
        raise TransitionMatrixError(variable, "an entry is negative, missing or infinite")
    worst = float(np.abs(values.sum(axis=1) - 1.0).max(initial=0.0))
    if worst > ROW_SUM_TOLERANCE:
        raise TransitionMatrixError(
            variable, f"a row sums to 1 +/- {worst:.3g} (tolerance {ROW_SUM_TOLERANCE:g})"
        )
    return matrix


def _per_variable(name: str, value: object, variables: Sequence[Hashable]) -> dict[Hashable, float]:
    if isinstance(value, Mapping):
        unknown = [v for v in value if v not in variables]
        if unknown:
            raise ProtectionParameterError(_METHOD, name, "keyed by pram variables only", unknown)
        return {
            v: check_real(_METHOD, name, value.get(v, _DEFAULTS[name]), 0.0, 1.0) for v in variables
        }
    number = check_real(_METHOD, name, value, 0.0, 1.0)
    return dict.fromkeys(variables, number)


_DEFAULTS = {"min_diagonal": 0.8, "alpha": 0.5}


def _sample(codes: np.ndarray, matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a new category for each code from row ``codes[i]`` of `matrix` (inverse CDF)."""
    result = codes.copy()
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=len(matrix)))))
    draws = rng.random(len(codes))
    cumulative = np.cumsum(matrix, axis=1)
    cumulative /= cumulative[:, -1:]  # last entry exactly 1.0, so a draw in [0, 1) stays inside
    for i in range(len(matrix)):
        rows = order[bounds[i] : bounds[i + 1]]
        if len(rows):
            result[rows] = np.searchsorted(cumulative[i], draws[rows], side="right")
    return result


def pram(
    data: pd.DataFrame,
    variables: Hashable | Sequence[Hashable],
    rng: np.random.Generator,
    *,
    transitions: Mapping[Hashable, pd.DataFrame] | None = None,
    invariant: bool = False,
    min_diagonal: float | Mapping[Hashable, float] = 0.8,
    alpha: float | Mapping[Hashable, float] = 0.5,
    strata: Hashable | Sequence[Hashable] | None = None,
) -> PramResult:
    """Randomise categorical `variables` by PRAM, drawing from the Generator `rng`.

    A variable with a matrix in `transitions` (a square DataFrame labelled by categories on
    both axes, covering every category present, rows summing to 1) uses it as given, as
    sdcMicro does, or its invariant version for each stratum's frequencies when `invariant`
    is true. Other variables get sdcMicro's default: an invariant matrix from a random ``P``
    with diagonal ``U(min_diagonal, 1)`` (sdcMicro's ``pd``), blended with the identity by
    `alpha` (both a number or a per-variable mapping). The categories of a categorical column
    are its declared categories; of another column, its sorted distinct values.

    Pass ``numpy.random.default_rng()`` (seeded by the operating system) in production: a
    fixed seed lets whoever knows it undo the randomisation. The input is never modified.
    """
    frame = check_frame(_METHOD, data)
    rng = check_generator(_METHOD, rng)
    if isinstance(variables, str) or not isinstance(variables, Sequence):
        variables = [variables]
    names = check_columns(_METHOD, frame, "variables", variables)
    if isinstance(strata, str) or not isinstance(strata, Sequence):
        strata = None if strata is None else [strata]
    strata_names = check_columns(_METHOD, frame, "strata", strata, required=False)
    check_disjoint(_METHOD, "variables", names, "strata", strata_names)
    given = dict(transitions or {})
    unknown = [v for v in given if v not in names]
    if unknown:
        raise ProtectionParameterError(
            _METHOD, "transitions", "keyed by variables being pram'ed", unknown
        )
    diagonals = _per_variable("min_diagonal", min_diagonal, names)
    alphas = _per_variable("alpha", alpha, names)
    stratum, labels = group_ids(frame, strata_names)

    result = frame.copy(deep=False)
    matrices: dict[Hashable, dict[tuple, pd.DataFrame]] = {}
    changes: list[int] = []
    for variable in names:
        series = frame[variable]
        if variable in given:
            table = _checked_matrix(str(variable), given[variable], _categories(series))
            categories = list(table.index)
            fixed: np.ndarray | None = table.to_numpy(dtype=np.float64)
        else:
            categories = _categories(series)
            fixed = None
        codes = pd.Index(categories).get_indexer(series)  # -1: missing
        new_codes = codes.copy()
        matrices[variable] = {}
        for s, label in enumerate(labels):
            rows = np.flatnonzero((stratum == s) & (codes >= 0))
            counts = np.bincount(codes[rows], minlength=len(categories))
            if fixed is None:
                matrix = default_transition_matrix(
                    counts, rng, diagonals[variable], alphas[variable]
                )
            elif invariant:
                matrix = invariant_matrix(fixed, counts, alphas[variable])
            else:
                matrix = fixed
            if len(rows):
                new_codes[rows] = _sample(codes[rows], matrix, rng)
            matrices[variable][label] = pd.DataFrame(matrix, index=categories, columns=categories)
        changes.append(int(np.count_nonzero(new_codes != codes)))
        result[variable] = _rebuild(series, categories, new_codes)
    return PramResult(
        data=result,
        matrices=matrices,
        changes=pd.Series(
            changes, index=pd.Index(names, name="variable"), name="changes", dtype=np.int64
        ),
    )


def _rebuild(series: pd.Series, categories: list[Hashable], codes: np.ndarray) -> pd.Series:
    """The column with new category codes, in the input's dtype where it can hold them."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categorical = pd.Categorical.from_codes(
            codes, dtype=pd.CategoricalDtype(categories, ordered=series.cat.ordered)
        )
        return pd.Series(categorical, index=series.index, name=series.name)
    values = pd.Index(categories).take(np.where(codes >= 0, codes, 0))
    rebuilt = pd.Series(values, index=series.index, name=series.name)
    rebuilt = rebuilt.mask(pd.Series(codes < 0, index=series.index))
    try:
        return rebuilt.astype(series.dtype)
    except (TypeError, ValueError):
        return rebuilt
