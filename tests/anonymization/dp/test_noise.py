"""The noise has the scale its accounting states, and comes from a secure generator.

Statistical tests over many draws with generous tolerances (several standard errors): a
correct mechanism fails them with negligible probability, a wrong scale (off by a factor of m
or 2) fails them surely.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anonymization.dp import _diffprivlib as dpl
from anonymization.dp import dp_count, dp_histogram, dp_mean, dp_quantile, dp_sum

DRAWS = 3000


def _events(pupils: int, per_pupil: int, values: np.ndarray | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"eleve": np.repeat(np.arange(pupils), per_pupil)})
    frame["x"] = values if values is not None else np.linspace(0, 10, len(frame))
    return frame


def _geometric_variance(epsilon: float, sensitivity: float) -> float:
    """Variance of the two-sided geometric noise: 2α/(1-α)², α = exp(-ε/Δ)."""
    alpha = math.exp(-epsilon / sensitivity)
    return 2 * alpha / (1 - alpha) ** 2


def test_count_noise_is_geometric_with_scale_m_over_epsilon() -> None:
    data = _events(200, 3)
    draws = np.array([dp_count(data, pupil="eleve", epsilon=1.0, max_contributions=3).value
                      for _ in range(DRAWS)], dtype=float)
    expected = _geometric_variance(1.0, 3)  # ≈ 17.8
    assert draws.var(ddof=1) == pytest.approx(expected, rel=0.2)
    assert abs(draws.mean() - 600) < 5 * math.sqrt(expected / DRAWS)
    assert np.all(draws == np.round(draws))


def test_sum_noise_is_laplace_with_scale_sensitivity_over_epsilon() -> None:
    data = _events(100, 1)
    true = float(np.clip(data["x"], 0, 10).sum())
    draws = np.array([dp_sum(data, "x", pupil="eleve", bounds=(0, 10), epsilon=0.5).value
                      for _ in range(DRAWS)])
    b = 10 / 0.5  # Δ = 1 * max(|0|, |10|), b = Δ/ε
    assert draws.var(ddof=1) == pytest.approx(2 * b * b, rel=0.2)
    assert abs(draws.mean() - true) < 5 * math.sqrt(2) * b / math.sqrt(DRAWS)
    # Laplace: the mean absolute deviation is b.
    assert np.abs(draws - true).mean() == pytest.approx(b, rel=0.15)


def test_sum_noise_grows_with_the_contribution_bound() -> None:
    data = _events(50, 4)
    one = [dp_sum(data, "x", pupil="eleve", bounds=(0, 10), epsilon=1.0,
                  max_contributions=1, rng=np.random.default_rng(i)).value
           for i in range(DRAWS // 2)]
    four = [dp_sum(data, "x", pupil="eleve", bounds=(0, 10), epsilon=1.0,
                   max_contributions=4).value for _ in range(DRAWS // 2)]
    # With m = 1 the kept rows vary too, but that spread is small next to Lap(10).
    ratio = np.var(four, ddof=1) / np.var(one, ddof=1)
    assert ratio == pytest.approx(16, rel=0.3)


def test_histogram_noise_per_bin_is_geometric_with_scale_m_over_epsilon() -> None:
    values = np.repeat([2.5, 7.5, 12.5], 100)
    data = _events(150, 2, values)
    draws = np.array([dp_histogram(data, "x", pupil="eleve", bins=3, bounds=(0, 15),
                                   epsilon=1.0, max_contributions=2).value.counts
                      for _ in range(DRAWS // 2)], dtype=float)
    expected = _geometric_variance(1.0, 2)  # ≈ 7.8
    for column in draws.T:
        assert column.var(ddof=1) == pytest.approx(expected, rel=0.2)
        assert abs(column.mean() - 100) < 5 * math.sqrt(expected / len(column))


def test_mean_is_centred_on_the_clipped_mean_with_the_stated_spread() -> None:
    rng = np.random.default_rng(7)
    data = _events(400, 1, rng.uniform(-2, 12, 400))
    clipped = np.clip(data["x"], 0, 10)
    n, true = len(clipped), float(clipped.mean())
    draws = np.array([dp_mean(data, "x", pupil="eleve", bounds=(0, 10), epsilon=1.0).value
                      for _ in range(DRAWS)])
    b = (10 / 2) / 0.5  # centred sum: Δ = (U-L)/2 at ε/2
    centred = float((clipped - 5).sum())
    # Delta method: Var ≈ Var(S̃)/n² + (S/n²)² Var(Ñ).
    spread = math.sqrt(2 * b * b / n**2 + (centred / n**2) ** 2 * _geometric_variance(0.5, 1))
    assert draws.std(ddof=1) == pytest.approx(spread, rel=0.25)
    assert abs(draws.mean() - true) < 6 * spread / math.sqrt(DRAWS) + 1e-3
    assert draws.min() >= 0 and draws.max() <= 10


def test_quantile_error_grows_with_the_contribution_bound() -> None:
    values = np.linspace(0, 100, 1000)  # neighbours 0.1 apart; true median 50
    per_row = _events(1000, 1, values)
    per_five = _events(200, 5, values)

    def median_error(data: pd.DataFrame, m: int) -> float:
        draws = [dp_quantile(data, "x", 0.5, pupil="eleve", bounds=(0, 100), epsilon=1.0,
                             max_contributions=m).value for _ in range(400)]
        return float(np.median(np.abs(np.array(draws) - 50)))

    one, five = median_error(per_row, 1), median_error(per_five, 5)
    # Rank errors of a few rows with m = 1; the utility is scaled down 5 times with m = 5.
    assert one < 1.0
    assert five > 2 * one


def test_the_noise_does_not_follow_numpy_seeds() -> None:
    data = _events(100, 1)
    values = []
    for _ in range(2):
        np.random.seed(0)  # the legacy global seed must not fix the noise
        values.append(dp_sum(data, "x", pupil="eleve", bounds=(0, 10), epsilon=1.0,
                             rng=np.random.default_rng(0)).value)
    assert values[0] != values[1]
    same_rng = [dp_mean(data, "x", pupil="eleve", bounds=(0, 10), epsilon=1.0,
                        rng=np.random.default_rng(0)).value for _ in range(2)]
    assert same_rng[0] != same_rng[1]


def test_every_mechanism_draws_from_secrets_system_random(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []

    def spy(cls: type) -> type:
        class Spy(cls):  # type: ignore[valid-type, misc]
            def __init__(self, **kwargs: Any) -> None:
                assert kwargs.get("random_state") is None, kwargs
                super().__init__(**kwargs)
                built.append(self)
        return Spy

    for name in ("Laplace", "GeometricTruncated"):
        monkeypatch.setattr(dpl.mechanisms, name, spy(getattr(dpl.mechanisms, name)))
    data = _events(20, 1)
    dp_count(data, pupil="eleve", epsilon=1.0)
    dp_sum(data, "x", pupil="eleve", bounds=(0, 10), epsilon=1.0)
    dp_mean(data, "x", pupil="eleve", bounds=(0, 10), epsilon=1.0)
    assert len(built) == 4
    assert all(isinstance(mechanism._rng, secrets.SystemRandom) for mechanism in built)


def test_diffprivlib_tools_draw_from_secrets_system_random_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    built: list[Any] = []
    for module_name, name in (("diffprivlib.tools.histograms", "GeometricTruncated"),
                              ("diffprivlib.tools.quantiles", "Exponential")):
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        class Spy(original):  # type: ignore[valid-type, misc]
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                built.append(self)

        monkeypatch.setattr(module, name, Spy)
    data = _events(20, 1)
    dp_histogram(data, "x", pupil="eleve", bins=2, bounds=(0, 10), epsilon=1.0)
    dp_quantile(data, "x", 0.5, pupil="eleve", bounds=(0, 10), epsilon=1.0)
    assert len(built) == 2
    assert all(isinstance(mechanism._rng, secrets.SystemRandom) for mechanism in built)
