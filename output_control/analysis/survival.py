"""Checked survival tables: a Kaplan–Meier life table over public intervals, computed by hand.

For one row per pupil with a time ``T_i >= 0`` and an event flag ``δ_i`` (1: the event happened
at ``T_i``; 0: the pupil was censored at ``T_i``, i.e. still without event when last seen), the
Kaplan–Meier estimator of the survival function is

    S(t) = Π_{t_j <= t} (1 - d_j / n_j)

over the distinct event times ``t_j``, where ``d_j`` is the number of events at ``t_j`` and
``n_j = #{i : T_i >= t_j}`` the number at risk just before ``t_j`` (a pupil censored at ``t_j``
is still at risk then: events come before censorings at tied times). Source: E. L. Kaplan and
P. Meier, "Nonparametric estimation from incomplete observations", JASA 53(282), 1958,
457–481; Klein & Moeschberger, *Survival Analysis*, 2nd ed., 2003, section 4.2.

The published table is grouped by the researcher's interval edges ``e_0 < e_1 < ... < e_K``
(public parameters, like histogram bins): for interval ``k = [e_k, e_{k+1})`` it gives the
pupils at risk at its start ``#{T_i >= e_k}``, its events and censorings (``e_k <= T_i <
e_{k+1}``), the pupils who went through it without either, and ``S(e_{k+1}-)``, the estimate
just before its end (the product over the event times ``t_j < e_{k+1}``). Times at or after the
last edge count as having gone through the last interval.

Two outputs are written, so that the existing rules judge them:

- ``<name>.csv``, a **frequency table** rows = intervals (per group of ``by``), columns =
  ``outcome`` in ``event``, ``censored``, ``survived``: these three cells partition the pupils
  at risk in the interval, so ``minimum_count`` flags every interval with 1 to 9 events (or
  censorings), ``zeros`` an interval without any, ``class_disclosure`` one where every pupil at
  risk had the same outcome. ACRO's ``surv_func`` (1.0.2) runs only its residual degrees of
  freedom check on a Kaplan–Meier table and, with suppression on, pools consecutive times until
  10 pupils have left the risk set; here each interval's counts are checked like any table.
- ``<name>_km.csv``, a **model output** (one ``survival`` estimate per interval, each cell
  counting the pupils at risk) whose residual degrees of freedom are the pupils minus the
  published estimates, judged by ``residual_degrees_of_freedom`` (ACRO's check, computed by it
  as pupils minus distinct times since it publishes one step per time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from output_control.analysis.charts import _edges, bin_labels
from output_control.checked import _write_output
from output_control.exceptions import InvalidTable, MissingUnitsError
from output_control.policy import Policy, load_policy
from output_control.sidecar import validate_output_name
from output_control.table import ModelFit, SidecarTable, TableKind, Unit

OUTCOMES = ("event", "censored", "survived")
INTERVAL = "interval"
KM_SUFFIX = "_km"


@dataclass(frozen=True)
class LifeTable:
    """Per interval: pupils at risk at its start, events, censorings, pupils who went through
    it, and the Kaplan–Meier estimate just before its end."""

    edges: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    survived: np.ndarray
    survival: np.ndarray


def kaplan_meier(time: np.ndarray, event: np.ndarray, edges: np.ndarray) -> LifeTable:
    """The Kaplan–Meier life table of ``(time, event)`` over intervals ``edges`` (see module).

    ``time`` holds finite numbers ``>= edges[0]``; ``event`` booleans (or 0/1).
    """
    t = np.asarray(time, dtype=np.float64)
    d = np.asarray(event).astype(bool)
    e = np.asarray(edges, dtype=np.float64)
    if t.shape != d.shape or t.ndim != 1:
        raise ValueError("time and event must be one-dimensional and of the same length")
    if not np.isfinite(t).all():
        raise ValueError("times must be finite numbers")
    if t.size and t.min() < e[0]:
        raise ValueError("some times fall before the first interval edge; start the edges at "
                         "the time origin (usually 0)")
    ordered = np.sort(t)
    # n at risk at each edge: #{T >= e_k}
    at_risk_edges = t.size - np.searchsorted(ordered, e, side="left")
    at_risk = at_risk_edges[:-1]
    survived = at_risk_edges[1:]
    k = np.searchsorted(e, t, side="right") - 1  # interval of each time; K-1 if beyond
    inside = k < len(e) - 1
    events = np.bincount(k[inside & d], minlength=len(e) - 1)
    censored = np.bincount(k[inside & ~d], minlength=len(e) - 1)
    # Product-limit at the distinct event times.
    event_times, d_j = np.unique(t[d], return_counts=True)
    n_j = t.size - np.searchsorted(ordered, event_times, side="left")
    steps = np.cumprod(1.0 - d_j / n_j) if event_times.size else np.empty(0)
    last = np.searchsorted(event_times, e[1:], side="left")  # event times strictly before the end
    survival = np.where(last > 0, steps[np.maximum(last - 1, 0)] if steps.size else 1.0, 1.0)
    return LifeTable(e, at_risk.astype(np.int64), events.astype(np.int64),
                     censored.astype(np.int64), survived.astype(np.int64),
                     np.clip(survival.astype(np.float64), 0.0, 1.0))


def survival_table(
    df: pd.DataFrame,
    time: str,
    event: str,
    *,
    edges: Sequence[float],
    by: str | None = None,
    pupil_id: str = "eleve",
    name: str,
    outputs_dir: Path | str | None = None,
    population: dict | None = None,
    policy: Policy | str = "default",
    justification: str | None = None,
) -> pd.DataFrame:
    """Kaplan–Meier life table of ``time`` to ``event`` (per group of ``by``) over ``edges``.

    ``df`` has one row per pupil; ``event`` is true (or 1) for an event, false (0) for a
    censored time. Returns a frame with ``at_risk``, ``events``, ``censored``, ``survived`` and
    ``survival`` per interval (and group), and writes ``<name>.csv`` (the counts) and
    ``<name>_km.csv`` (the estimates), each with its sidecar, checked at once.
    """
    validate_output_name(name)
    validate_output_name(name + KM_SUFFIX)
    cuts = _edges(list(edges), None)
    data = _survival_rows(df, time, event, by, pupil_id)
    groups = ["all"] if by is None else sorted(set(data[by].astype(str)))
    labels = interval_labels(cuts)
    parts = []
    for group in groups:
        rows = data if by is None else data[data[by].astype(str) == group]
        table = kaplan_meier(rows[time].to_numpy(dtype=np.float64),
                             rows[event].to_numpy().astype(bool), cuts)
        frame = pd.DataFrame({"at_risk": table.at_risk, "events": table.events,
                              "censored": table.censored, "survived": table.survived,
                              "survival": table.survival})
        frame.insert(0, INTERVAL, labels)
        if by is not None:
            frame.insert(0, by, group)
        parts.append(frame)
    result = pd.concat(parts, ignore_index=True)
    keys = [INTERVAL] if by is None else [by, INTERVAL]
    result = result.set_index(keys)
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    counts, estimates = _tables(result, keys, pupil_id, n_pupils=len(data))
    _write_output(counts, name=name, policy=policy, population=population,
                  justification=justification, outputs_dir=outputs_dir,
                  function="survival_table")
    _write_output(estimates, name=name + KM_SUFFIX, policy=policy, population=population,
                  justification=justification, outputs_dir=outputs_dir,
                  function="survival_table")
    return result


def interval_labels(edges: np.ndarray) -> list[str]:
    """``[a, b)`` for every interval: a time equal to the last edge went through the table."""
    labels = bin_labels(edges)
    return [*labels[:-1], labels[-1][:-1] + ")"]


def _survival_rows(df: pd.DataFrame, time: str, event: str, by: str | None,
                   pupil_id: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    keys = [time, event] + ([] if by is None else [by])
    if len(set(keys)) != len(keys):
        raise ValueError(f"time, event and by must be distinct columns, got {keys}")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise KeyError(f"variables {missing} are not columns of the data frame")
    if pupil_id not in df.columns:
        raise MissingUnitsError(f"column {pupil_id!r} is missing: a survival table counts "
                                "pupils; pass pupil_id=<the column identifying pupils>")
    if pupil_id in keys:
        raise MissingUnitsError(f"the pupil column {pupil_id!r} cannot be a table variable")
    data = df[[*keys, pupil_id]]
    if data.isna().any().any():
        raise ValueError(f"columns {[*keys, pupil_id]} must have no missing value: decide "
                         "how to treat them (censor, drop) before the table")
    if data[pupil_id].duplicated().any():
        raise ValueError("a survival table needs one row per pupil (a time and an event "
                         f"flag each); {pupil_id!r} repeats")
    if not pd.api.types.is_numeric_dtype(data[time]) or pd.api.types.is_bool_dtype(data[time]):
        raise TypeError(f"column {time!r} must hold numeric times")
    flags = data[event]
    if not (pd.api.types.is_bool_dtype(flags) or set(pd.unique(flags)) <= {0, 1}):
        raise ValueError(f"column {event!r} must be true/false or 0/1")
    if data.empty:
        raise ValueError("no rows to tabulate")
    return data


def _tables(result: pd.DataFrame, keys: list[str], pupil_id: str,
            n_pupils: int) -> tuple[SidecarTable, SidecarTable]:
    """The counts (frequency table) and the estimates (model output) of a life table."""
    row_labels = tuple(tuple(str(p) for p in (k if isinstance(k, tuple) else (k,)))
                       for k in result.index)
    counts = tuple(tuple(int(v) for v in line)
                   for line in result[["events", "censored", "survived"]].to_numpy().tolist())
    at_risk = tuple((int(v),) for v in result["at_risk"].tolist())
    survival = tuple((float(v) if v == v else None,) for v in result["survival"].tolist())
    published = len(result)
    try:
        frequency = SidecarTable(
            index=tuple(keys), columns=("outcome",), row_labels=row_labels,
            column_labels=tuple((o,) for o in OUTCOMES), rows=counts, units=counts,
            unit=Unit.DISTINCT_PUPILS, unit_column=str(pupil_id),
            kind=TableKind.FREQUENCY_TABLE,
        )
        model = SidecarTable(
            index=tuple(keys), columns=("statistic",), row_labels=row_labels,
            column_labels=(("survival",),), rows=at_risk, units=at_risk,
            unit=Unit.DISTINCT_PUPILS, unit_column=str(pupil_id),
            kind=TableKind.MODEL_OUTPUT, values=survival,
            model=ModelFit(estimator="kaplan_meier", n_obs=n_pupils,
                           dof=max(0, n_pupils - published)),
        )
    except InvalidTable as exc:
        raise InvalidTable(f"the survival table cannot be written: {exc}") from None
    return frequency, model
