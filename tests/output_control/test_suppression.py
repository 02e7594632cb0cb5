"""Secondary suppression: hand-checked tables, the LP audit, and properties on random tables
(every primary cell keeps its protection interval, no suppressed cell is alone in a relation,
the optimal pattern never costs more than the heuristic's)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from output_control.suppression import (
    InfeasibleProtection,
    SuppressionError,
    UnprotectedPattern,
    audit_pattern,
    make_problem,
    p_percent_protection,
    require_protected,
    suppress_hypercube,
    suppress_optimal,
    with_margins,
)

TABLE = np.array([[20, 3, 40], [30, 25, 35], [18, 22, 50]])


def _pattern(shape: tuple[int, int], cells: list[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for cell in cells:
        mask[cell] = True
    return mask


def test_margins_are_appended() -> None:
    grid = with_margins([[1, 2], [3, 4]])
    assert grid.tolist() == [[1, 2, 3], [3, 4, 7], [4, 6, 10]]


def test_given_margins_must_add_up() -> None:
    grid = with_margins(TABLE)
    make_problem(grid, TABLE < 10, margins="given")
    grid[0, -1] += 1
    with pytest.raises(SuppressionError, match="do not add up"):
        make_problem(grid, TABLE < 10, margins="given")


def test_a_lone_suppressed_cell_is_recovered_from_its_row_total() -> None:
    problem = make_problem(TABLE, TABLE < 10)
    report = audit_pattern(problem, _pattern(problem.shape, [(0, 1)]))
    interval = report.interval((0, 1))
    assert (interval.low, interval.high) == (3, 3)
    assert not report.protected
    with pytest.raises(UnprotectedPattern, match=r"\(row 0, column 1\) value 3 can be narrowed"):
        require_protected(problem, _pattern(problem.shape, [(0, 1)]))


def test_a_rectangle_gives_the_interval_the_margins_allow() -> None:
    problem = make_problem(TABLE, TABLE < 10)
    pattern = _pattern(problem.shape, [(0, 0), (0, 1), (1, 0), (1, 1)])
    report = audit_pattern(problem, pattern)
    # x01 = 3 + d, x00 = 20 - d, x11 = 25 - d, x10 = 30 + d, all >= 0: d in [-3, 20]
    assert (report.interval((0, 1)).low, report.interval((0, 1)).high) == (0, 23)
    assert (report.interval((1, 1)).low, report.interval((1, 1)).high) == (5, 28)
    assert report.protected
    assert report.describe() == (
        "all primary cells keep their protection interval (4 suppressed cells audited)"
    )


def test_a_pattern_must_suppress_every_primary_cell() -> None:
    problem = make_problem(TABLE, TABLE < 10)
    with pytest.raises(SuppressionError, match="publishes a primary cell"):
        audit_pattern(problem, _pattern(problem.shape, [(0, 0)]))


def test_the_protection_interval_is_checked_at_its_limit() -> None:
    # 2 x 2 table [[5, 5], [5, 5]]: suppressing the four interior cells lets each move by 5.
    pattern = _pattern((3, 3), [(0, 0), (0, 1), (1, 0), (1, 1)])
    grid = np.full((2, 2), 5)
    primary = np.array([[True, False], [False, False]])
    exact = make_problem(grid, primary, protection=1.0)  # needs [0, 10]: exactly reached
    assert audit_pattern(exact, pattern).protected
    beyond = make_problem(grid, primary, protection=(np.full((3, 3), 5.01), np.zeros((3, 3))))
    assert not audit_pattern(beyond, pattern).protected


@pytest.mark.parametrize("method", [suppress_optimal, suppress_hypercube])
def test_both_methods_protect_the_small_cell(method) -> None:
    problem = make_problem(TABLE, TABLE < 10)
    result = method(problem)
    assert result.audit.protected
    assert result.suppressed[0, 1]
    assert result.suppressed.sum() == 4  # one rectangle is enough
    assert result.cost == pytest.approx(sum(problem.costs[result.suppressed]))
    assert np.isnan(result.published()[0, 1]) and result.published()[3, 3] == 243


def test_optimal_prefers_the_cheapest_complements() -> None:
    problem = make_problem(TABLE, TABLE < 10)
    result = suppress_optimal(problem)
    # cheapest rectangle with (0, 1): columns 0 or 2 with rows 1 or 2; (0,0)+(2,0)+(2,1) costs
    # 21 + 19 + 23 = 63, the least of the four
    assert sorted(map(tuple, np.argwhere(result.complementary))) == [(0, 0), (2, 0), (2, 1)]
    assert result.method == "optimal"


def test_a_primary_margin_is_protected_too() -> None:
    primary = np.zeros((4, 4), dtype=bool)
    primary[0, 3] = True  # the first row total
    problem = make_problem(with_margins(TABLE), primary, margins="given")
    for method in (suppress_optimal, suppress_hypercube):
        assert method(problem).audit.protected


def test_impossible_protection_is_refused() -> None:
    primary = np.array([[True, False], [False, False]])
    with pytest.raises(InfeasibleProtection):
        make_problem([[2, 5], [5, 5]], primary, protection=(np.full((3, 3), 1), np.full((3, 3), 3)))
    with pytest.raises(SuppressionError, match="no protection level"):
        make_problem([[2, 5], [5, 5]], primary, protection=0.0, min_protection=0.0)


def test_a_single_row_table_is_protected_through_its_totals() -> None:
    problem = make_problem([[3, 40]], np.array([[True, False]]))
    result = suppress_optimal(problem)
    # the cell equals its column total: both columns go, the totals 43 stay (cost 4+41+4+41)
    assert result.suppressed.tolist() == [[True, True, False], [True, True, False]]
    assert result.cost == 90
    assert result.audit.interval((0, 0)).high == 43


def test_p_percent_protection_level() -> None:
    # X = 160, x1 = 100, x2 = 50: the rest (10) hides x1 within 10%: no protection needed
    assert p_percent_protection(160, 100, 50, 10) == 0
    # X = 155: the rest (5) lacks 5 to reach 10% of 100
    assert p_percent_protection(155, 100, 50, 10) == 5


# Properties on random small tables.
_tables = st.integers(2, 5).flatmap(
    lambda m: st.integers(2, 5).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(0, 40), min_size=n, max_size=n), min_size=m, max_size=m),
            st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=m, max_size=m),
        )
    )
)


def _problem(table: list[list[int]], primary: list[list[bool]], protection: float):
    grid = np.array(table, dtype=float)
    mask = np.array(primary) & (grid > 0)
    if not mask.any():
        mask[np.unravel_index(np.argmax(grid), grid.shape)] = grid.max() > 0
    return make_problem(grid, mask, protection=protection)


def _assert_protected_and_no_lone_cell(problem, result) -> None:
    report = audit_pattern(problem, result.suppressed)
    for interval in report.intervals:
        if interval.primary:
            value = interval.value
            assert interval.high >= value + problem.upper[interval.cell] - 1e-6
            assert interval.low <= value - problem.lower[interval.cell] + 1e-6
    suppressed = result.suppressed
    for line in (*suppressed, *suppressed.T):  # each grid row and column is a relation
        assert line.sum() != 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_tables, protection=st.sampled_from([0.1, 0.3, 0.5]))
def test_random_tables_are_protected_and_optimal_costs_no_more(data, protection) -> None:
    table, primary = data
    try:
        problem = _problem(table, primary, protection)
    except InfeasibleProtection:
        return
    if not problem.primary.any():
        return
    try:
        optimal = suppress_optimal(problem, time_limit=30)
    except InfeasibleProtection:
        with pytest.raises(InfeasibleProtection):
            suppress_hypercube(problem)
        return
    _assert_protected_and_no_lone_cell(problem, optimal)
    try:
        heuristic = suppress_hypercube(problem)
    except InfeasibleProtection:
        return  # the heuristic may give up where the optimum exists
    _assert_protected_and_no_lone_cell(problem, heuristic)
    assert optimal.cost <= heuristic.cost + 1e-6


def _reference_interval(problem, suppressed: np.ndarray, cell: tuple[int, int]):
    """min and max of ``cell`` by one LP over the whole grid (published cells fixed by their
    bounds), independent of the audit's split into parts and its reuse of tables."""
    from scipy.optimize import linprog

    flat = suppressed.ravel()
    values = problem.values.ravel()
    bounds = np.column_stack(
        [
            np.where(flat, problem.lower_bounds.ravel(), values),
            np.where(flat, problem.upper_bounds.ravel(), values),
        ]
    )
    index = int(np.ravel_multi_index(cell, problem.shape))
    extremes = []
    for sign in (1.0, -1.0):
        objective = np.zeros(problem.size)
        objective[index] = sign
        result = linprog(
            objective,
            A_eq=problem.relations,
            b_eq=np.zeros(problem.shape[0] + problem.shape[1]),
            bounds=bounds,
            method="highs",
        )
        extremes.append(sign * result.fun if result.status == 0 else sign * -np.inf)
    return extremes[0], extremes[1]


def test_separate_rectangles_are_audited_apart_and_a_lone_cell_is_exact() -> None:
    grid = np.array([[20, 3, 40, 7], [30, 25, 35, 9], [18, 22, 50, 11], [5, 6, 8, 12]])
    problem = make_problem(grid, grid < 4)
    # two rectangles sharing no relation, so two separate parts of the attacker's LP, and the
    # grand total (4, 4), alone in its row and column: recovered exactly, with no LP
    pattern = _pattern(
        problem.shape,
        [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (4, 4)],
    )
    report = audit_pattern(problem, pattern)
    assert (report.interval((0, 1)).low, report.interval((0, 1)).high) == (0, 23)
    # x22 = 50 + d, x23 = 11 - d, x32 = 8 - d, x33 = 12 + d: d in [-12, 8]
    assert (report.interval((2, 2)).low, report.interval((2, 2)).high) == (38, 58)
    assert report.interval((4, 4)).exact and report.interval((4, 4)).low == grid.sum()
    for item in report.intervals:
        low, high = _reference_interval(problem, pattern, item.cell)
        assert item.low == pytest.approx(low) and item.high == pytest.approx(high)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=_tables,
    protection=st.sampled_from([0.1, 0.3, 0.5]),
    seed=st.integers(0, 2**16),
    capped=st.booleans(),
)
def test_audit_intervals_equal_one_lp_over_the_whole_grid(data, protection, seed, capped) -> None:
    table, primary = data
    try:
        problem = _problem(table, primary, protection)
        if capped:  # finite a-priori upper bounds, which some extremes then reach
            grid = np.array(table, dtype=float)
            problem = make_problem(
                grid,
                problem.primary,
                margins="compute",
                protection=protection,
                upper_bounds=with_margins(grid)
                + np.random.default_rng(seed).integers(0, 8, size=problem.shape),
            )
    except InfeasibleProtection:
        return
    pattern = problem.primary | (np.random.default_rng(seed).random(problem.shape) < 0.4)
    report = audit_pattern(problem, pattern)
    for item in report.intervals:
        low, high = _reference_interval(problem, pattern, item.cell)
        assert item.low == pytest.approx(low, abs=1e-6)
        assert item.high == pytest.approx(high, abs=1e-6)
