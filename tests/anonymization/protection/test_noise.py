"""Noise addition: the variances and covariances of sdcMicro's definitions, checked
statistically with fixed Generators (seeded here only because these are tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anonymization.exceptions import NonNumericVariableError, ProtectionParameterError
from anonymization.protection import add_noise

N = 200_000


@pytest.fixture(scope="module")
def correlated_frame() -> pd.DataFrame:
    rng = np.random.default_rng(12345)
    covariance = np.array([[4.0, 2.4, 0.0], [2.4, 9.0, -1.5], [0.0, -1.5, 1.0]])
    values = rng.multivariate_normal([10.0, -3.0, 100.0], covariance, size=N)
    return pd.DataFrame(values, columns=["a", "b", "c"])


def test_additive_noise_has_the_expected_variance(correlated_frame: pd.DataFrame) -> None:
    result = add_noise(
        correlated_frame, ["a", "b", "c"], np.random.default_rng(1), method="additive", noise=50
    )
    noise = result[["a", "b", "c"]].to_numpy() - correlated_frame.to_numpy()
    expected = (0.5**2) * correlated_frame.var(ddof=1).to_numpy()
    # the sample variance of N normal draws has relative sd sqrt(2 / N) ~ 0.3%: allow 2%
    np.testing.assert_allclose(noise.var(axis=0, ddof=1), expected, rtol=0.02)
    assert (np.abs(noise.mean(axis=0)) < 5 * np.sqrt(expected / N)).all()
    # independent per variable: the noise of a and b is uncorrelated
    assert abs(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]) < 0.02


def test_correlated_noise_is_proportional_to_the_covariance(
    correlated_frame: pd.DataFrame,
) -> None:
    result = add_noise(
        correlated_frame, ["a", "b", "c"], np.random.default_rng(2), method="correlated", noise=30
    )
    noise = result[["a", "b", "c"]].to_numpy() - correlated_frame.to_numpy()
    sigma = np.cov(correlated_frame.to_numpy(), rowvar=False)
    np.testing.assert_allclose(np.cov(noise, rowvar=False), 0.3 * sigma, atol=0.03)
    # correlations of the protected data are those of the original
    np.testing.assert_allclose(
        result.corr().to_numpy(), correlated_frame.corr().to_numpy(), atol=0.01
    )


def test_correlated2_preserves_means_and_covariance(correlated_frame: pd.DataFrame) -> None:
    result = add_noise(
        correlated_frame, ["a", "b", "c"], np.random.default_rng(3), method="correlated2", delta=0.5
    )
    np.testing.assert_allclose(
        result.mean().to_numpy(), correlated_frame.mean().to_numpy(), atol=0.03
    )
    np.testing.assert_allclose(
        np.cov(result.to_numpy(), rowvar=False),
        np.cov(correlated_frame.to_numpy(), rowvar=False),
        atol=0.1,
    )
    # and it did change the values: x' = d x + ... + delta e, d = sqrt(1 - 0.25)
    change = result["a"].to_numpy() - correlated_frame["a"].to_numpy()
    assert change.std() > 0.5


def test_zero_noise_changes_nothing() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, 5, 2]})
    result = add_noise(frame, ["x", "y"], np.random.default_rng(0), noise=0)
    np.testing.assert_array_equal(result.to_numpy(), frame.to_numpy())
    assert result["y"].dtype == np.float64


def test_missing_values_stay_missing_and_are_left_out_of_moments() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, 5.0], "y": [2.0, 1.0, np.nan, 0.0]})
    for method in ("additive", "correlated", "correlated2"):
        result = add_noise(frame, ["x", "y"], np.random.default_rng(0), method=method)
        assert result.isna().equals(frame.isna())
        assert np.isfinite(result.to_numpy()[~frame.isna().to_numpy()]).all()


def test_same_seed_same_noise_and_input_untouched() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0)})
    first = add_noise(frame, "x", np.random.default_rng(8))
    second = add_noise(frame, "x", np.random.default_rng(8))
    pd.testing.assert_frame_equal(first, second)
    assert frame["x"].tolist() == list(np.arange(10.0))


def test_errors() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(NonNumericVariableError):
        add_noise(frame, ["s"], np.random.default_rng(0))
    with pytest.raises(ProtectionParameterError, match="method"):
        add_noise(frame, ["x"], np.random.default_rng(0), method="ROMM")  # type: ignore[arg-type]
    with pytest.raises(ProtectionParameterError, match="noise"):
        add_noise(frame, ["x"], np.random.default_rng(0), noise=-1)
    with pytest.raises(ProtectionParameterError, match="delta"):
        add_noise(frame, ["x"], np.random.default_rng(0), method="correlated2", delta=0)
    with pytest.raises(ProtectionParameterError, match="Generator"):
        add_noise(frame, ["x"], None)  # type: ignore[arg-type]
