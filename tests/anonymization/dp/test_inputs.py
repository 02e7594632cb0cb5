"""Refusals: missing or bad bounds, bad parameters and data are errors, and nothing is computed."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anonymization.dp import _diffprivlib as dpl
from anonymization.dp import (
    dp_category_counts,
    dp_count,
    dp_histogram,
    dp_mean,
    dp_quantile,
    dp_sum,
)
from anonymization.exceptions import (
    AnonymizationError,
    DifferentialPrivacyError,
    DPColumnError,
    DPInputError,
    DPMissingValueError,
    DPParameterError,
    InvalidBoundsError,
    MissingBoundsError,
    PrivacyLeakError,
)

FRAME = pd.DataFrame({"eleve": ["a", "a", "b", "c"], "score": [12.0, 15.0, 9.0, 18.0],
                      "niveau": ["6E", "6E", "CM2", "6E"]})

Query = Callable[..., Any]
#: Each bounded query with every argument but its bounds.
BOUNDED: dict[str, Query] = {
    "sum": lambda **kw: dp_sum(FRAME, "score", pupil="eleve", epsilon=1.0, **kw),
    "mean": lambda **kw: dp_mean(FRAME, "score", pupil="eleve", epsilon=1.0, **kw),
    "quantile": lambda **kw: dp_quantile(FRAME, "score", 0.5, pupil="eleve", epsilon=1.0, **kw),
    "histogram": lambda **kw: dp_histogram(FRAME, "score", pupil="eleve", bins=4, epsilon=1.0,
                                           **kw),
}
#: Every query with valid arguments, taking overrides.
ALL: dict[str, Query] = {
    "count": lambda **kw: dp_count(**{"data": FRAME, "pupil": "eleve", "epsilon": 1.0, **kw}),
    "sum": lambda **kw: dp_sum(**{"data": FRAME, "column": "score", "pupil": "eleve",
                                  "bounds": (0, 20), "epsilon": 1.0, **kw}),
    "mean": lambda **kw: dp_mean(**{"data": FRAME, "column": "score", "pupil": "eleve",
                                    "bounds": (0, 20), "epsilon": 1.0, **kw}),
    "quantile": lambda **kw: dp_quantile(**{"data": FRAME, "column": "score", "quantile": 0.5,
                                            "pupil": "eleve", "bounds": (0, 20),
                                            "epsilon": 1.0, **kw}),
    "histogram": lambda **kw: dp_histogram(**{"data": FRAME, "column": "score",
                                              "pupil": "eleve", "bins": 4, "bounds": (0, 20),
                                              "epsilon": 1.0, **kw}),
    "category_counts": lambda **kw: dp_category_counts(**{
        "data": FRAME, "column": "niveau", "pupil": "eleve", "categories": ["6E", "CM2"],
        "epsilon": 1.0, **kw}),
}


@pytest.fixture
def no_mechanism_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any diffprivlib mechanism or tool is reached."""
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a mechanism ran although the query should have been refused")

    for name in ("Laplace", "GeometricTruncated"):
        monkeypatch.setattr(dpl.mechanisms, name, forbidden)
    for name in ("histogram", "quantile"):
        monkeypatch.setattr(dpl.tools, name, forbidden)


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", list(BOUNDED))
@pytest.mark.parametrize("bounds", [None, (None, 20), (0, None), (float("nan"), 20),
                                    (0, float("nan"))],
                         ids=["no-bounds", "no-lower", "no-upper", "nan-lower", "nan-upper"])
def test_a_missing_bound_is_an_error_never_read_from_the_data(query: str, bounds: Any) -> None:
    with pytest.raises(MissingBoundsError, match="bounds read from the data"):
        BOUNDED[query](bounds=bounds)


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", list(BOUNDED))
@pytest.mark.parametrize("bounds", [(5, 5), (20, 0), (0, float("inf")), (-float("inf"), 0),
                                    ("0", "20"), (0, 10, 20), "0-20", 7],
                         ids=["empty", "reversed", "inf-upper", "inf-lower", "strings",
                              "three", "text", "scalar"])
def test_bounds_must_be_two_finite_increasing_numbers(query: str, bounds: Any) -> None:
    with pytest.raises(InvalidBoundsError, match="lower < upper"):
        BOUNDED[query](bounds=bounds)


@pytest.mark.usefixtures("no_mechanism_runs")
def test_category_counts_need_the_categories() -> None:
    with pytest.raises(MissingBoundsError, match="categories is missing"):
        ALL["category_counts"](categories=None)
    with pytest.raises(DPParameterError, match="distinct labels"):
        ALL["category_counts"](categories=["6E", "6E"])
    with pytest.raises(DPParameterError, match="distinct labels"):
        ALL["category_counts"](categories=[])


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("bins", ["auto", "fd", None, True, 0, -3, [1.0], [0, 10, 5],
                                  [0, float("nan"), 20], [0, 10, float("inf")]],
                         ids=["auto", "fd", "none", "bool", "zero", "negative", "one-edge",
                              "unsorted", "nan-edge", "inf-edge"])
def test_histogram_bins_are_public(bins: Any) -> None:
    with pytest.raises(DifferentialPrivacyError):
        ALL["histogram"](bins=bins)


@pytest.mark.usefixtures("no_mechanism_runs")
def test_histogram_with_edges_refuses_different_bounds() -> None:
    with pytest.raises(InvalidBoundsError, match="differ from the first and last"):
        ALL["histogram"](bins=[0, 10, 20], bounds=(0, 30))


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", list(ALL))
@pytest.mark.parametrize("epsilon", [0, -1.0, float("inf"), float("nan"), True, "1", None],
                         ids=["zero", "negative", "inf", "nan", "bool", "text", "none"])
def test_epsilon_must_be_a_finite_positive_number(query: str, epsilon: Any) -> None:
    with pytest.raises(DPParameterError, match="'epsilon' must be a finite number > 0"):
        ALL[query](epsilon=epsilon)


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", list(ALL))
@pytest.mark.parametrize("m", [0, -2, 1.5, True, "2"])
def test_max_contributions_must_be_a_positive_integer(query: str, m: Any) -> None:
    with pytest.raises(DPParameterError, match="'max_contributions' must be an integer >= 1"):
        ALL[query](max_contributions=m)


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", list(ALL))
def test_data_must_be_a_dataframe(query: str) -> None:
    with pytest.raises(DPInputError, match="takes a pandas DataFrame; got a dict"):
        ALL[query](data=FRAME.to_dict())


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", list(ALL))
def test_the_pupil_column_must_exist_and_be_complete(query: str) -> None:
    with pytest.raises(DPColumnError, match="column 'ine' is not in the data"):
        ALL[query](pupil="ine")
    holes = FRAME.assign(eleve=["a", None, "b", "c"])
    with pytest.raises(DPMissingValueError, match="'eleve' has 1 missing value"):
        ALL[query](data=holes)


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", ["sum", "mean", "quantile", "histogram"])
def test_the_value_column_must_exist_be_numeric_and_complete(query: str) -> None:
    with pytest.raises(DPColumnError, match="'nope' is not in the data"):
        ALL[query](column="nope")
    with pytest.raises(DPInputError, match="must be numeric"):
        ALL[query](column="niveau")
    with pytest.raises(DPInputError, match="must be numeric"):
        ALL[query](data=FRAME.assign(flag=[True, False, True, True]), column="flag")
    with pytest.raises(DPMissingValueError, match="'score' has 2 missing"):
        ALL[query](data=FRAME.assign(score=[1.0, np.nan, np.nan, 3.0]))


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("query", list(ALL))
def test_contribution_sampling_needs_a_numpy_generator(query: str) -> None:
    with pytest.raises(DPInputError, match=r"numpy.random.Generator .*got a RandomState"):
        ALL[query](rng=np.random.RandomState(0))
    with pytest.raises(DPInputError, match="got a int"):
        ALL[query](rng=42)
    # Pupil 'a' has two rows: with a bound of one, the kept row must be drawn at random.
    with pytest.raises(DPParameterError, match=r"'rng' must be a numpy\.random\.Generator"):
        ALL[query](max_contributions=1)


@pytest.mark.usefixtures("no_mechanism_runs")
@pytest.mark.parametrize("quantile", [-0.1, 1.5, float("nan"), "0.5", True])
def test_quantile_must_be_in_the_unit_interval(quantile: Any) -> None:
    with pytest.raises(DPParameterError, match=r"'quantile' must be a number in \[0, 1\]"):
        ALL["quantile"](quantile=quantile)


@pytest.mark.parametrize("tool", ["histogram", "quantile"])
def test_a_privacy_leak_warning_from_diffprivlib_is_an_error(
        monkeypatch: pytest.MonkeyPatch, tool: str) -> None:
    def leaky(*args: Any, **kwargs: Any) -> Any:
        warnings.warn("bounds computed from the data", dpl.PrivacyLeakWarning, stacklevel=2)
        return (np.zeros(4, dtype=int), np.linspace(0, 20, 5)) if tool == "histogram" else 1.0

    monkeypatch.setattr(dpl.tools, tool, leaky)
    with pytest.raises(PrivacyLeakError, match="diffprivlib reported a privacy leak"):
        ALL[tool](rng=np.random.default_rng(0))


def test_errors_are_anonymisation_errors_and_builtin_errors() -> None:
    with pytest.raises(AnonymizationError):
        ALL["sum"](bounds=None)
    with pytest.raises(ValueError, match="missing"):
        ALL["sum"](bounds=None)
    with pytest.raises(LookupError):
        ALL["sum"](column="nope", rng=np.random.default_rng(0))
    with pytest.raises(TypeError):
        ALL["sum"](data=[1, 2])


def test_error_messages_never_contain_data_values() -> None:
    secret = FRAME.assign(eleve=["INE-1234567890", "INE-1234567890", None, "x"])
    with pytest.raises(DPMissingValueError) as info:
        ALL["sum"](data=secret)
    assert "INE-" not in str(info.value)
    with pytest.raises(DPInputError) as text:
        ALL["sum"](column="niveau")
    assert "6E" not in str(text.value)


def test_errors_survive_pickling() -> None:
    import pickle

    for error in (MissingBoundsError("dp_sum", "bounds"),
                  InvalidBoundsError("dp_sum", "bounds", "got lower=1, upper=0"),
                  DPParameterError("dp_sum", "epsilon", "a finite number > 0", 0),
                  DPInputError("dp_sum", "detail"),
                  DPColumnError("dp_sum", "x", ["a"]),
                  DPMissingValueError("dp_sum", "x", 2),
                  PrivacyLeakError("dp_sum", "w")):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own objects
        assert type(copy) is type(error) and str(copy) == str(error)
