"""Server-rendered charts: the geometry of bar and line charts, drawn as SVG by the templates.

Only numbers computed here reach the SVG attributes; every label goes through the templates'
autoescaping. Each chart carries its title and description for assistive technologies, and the
pages show the same figures as a table. Axis steps are "nice" numbers (1, 2 or 5 times a power
of ten) so that gridlines fall on round values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def nice_step(maximum: float, ticks: int = 4) -> int:
    """The smallest step in {1, 2, 5} x 10^k such that ``ticks`` steps cover ``maximum``."""
    if maximum <= 0:
        return 1
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return max(1, int(factor * power))
    return max(1, int(10 * power))  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class Tick:
    """A gridline at ``pos`` (pixels) labelled ``label``."""

    pos: float
    label: str


@dataclass(frozen=True)
class Bar:
    """One bar: its rectangle, its label and its value."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars (categories) or vertical columns (days), ready to draw."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    horizontal: bool
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    labels: tuple[Tick, ...] = ()  # category-axis labels (columns: only some days)


def horizontal_bars(data: Sequence[tuple[str, int]], width: int = 640,
                    label_width: int = 200, bar_height: int = 22, gap: int = 10) -> BarChart:
    """One horizontal bar per category, longest value spanning the plot."""
    top, bottom_margin, right = 10, 26, 40
    height = top + len(data) * (bar_height + gap) + bottom_margin
    left, plot_right = label_width, width - right
    maximum = max((v for _, v in data), default=0)
    step = nice_step(maximum)
    scale_max = max(step * math.ceil(maximum / step), step)
    span = plot_right - left
    bars = tuple(Bar(left, top + i * (bar_height + gap), span * value / scale_max, bar_height,
                     label, value) for i, (label, value) in enumerate(data))
    ticks = tuple(Tick(left + span * v / scale_max, f"{v:,}".replace(",", "\u202f"))
                  for v in range(0, scale_max + 1, step))
    return BarChart(width, height, bars, ticks, True, left, plot_right, top,
                    height - bottom_margin)


def columns(data: Sequence[tuple[str, int]], width: int = 640, height: int = 240,
            label_every: int = 5) -> BarChart:
    """One vertical column per point (e.g. a day), labelling every ``label_every``-th."""
    left, right, top, bottom = 48, 24, 10, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    maximum = max((v for _, v in data), default=0)
    step = nice_step(maximum)
    scale_max = max(step * math.ceil(maximum / step), step)
    slot = plot_w / max(len(data), 1)
    bars = []
    labels = []
    for i, (label, value) in enumerate(data):
        h = plot_h * value / scale_max
        bars.append(Bar(left + i * slot + slot * 0.15, top + plot_h - h, slot * 0.7, h,
                        label, value))
        if i % label_every == 0 or i == len(data) - 1:
            labels.append(Tick(left + i * slot + slot / 2, label))
    ticks = tuple(Tick(top + plot_h - plot_h * v / scale_max, f"{v:,}".replace(",", "\u202f"))
                  for v in range(0, scale_max + 1, step))
    return BarChart(width, height, tuple(bars), ticks, False, left, width - right, top,
                    top + plot_h, tuple(labels))


@dataclass(frozen=True)
class LineChart:
    """A polyline over time with its axes."""

    width: int
    height: int
    points: str  # "x,y x,y ..." (numbers only)
    area: str  # the polygon under the line
    ticks: tuple[Tick, ...]
    labels: tuple[Tick, ...]
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    last_value: int


def line(data: Sequence[tuple[str, int]], width: int = 640, height: int = 240,
         label_every: int = 15) -> LineChart:
    """A step-free line through each point, labelling every ``label_every``-th on the x axis."""
    left, right, top, bottom = 48, 24, 10, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    maximum = max((v for _, v in data), default=0)
    step = nice_step(maximum)
    scale_max = max(step * math.ceil(maximum / step), step)
    n = max(len(data) - 1, 1)
    coords = [(left + plot_w * i / n, top + plot_h - plot_h * v / scale_max)
              for i, (_, v) in enumerate(data)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    base = top + plot_h
    area = (f"{left:.1f},{base:.1f} " + points + f" {coords[-1][0]:.1f},{base:.1f}"
            if coords else "")
    labels = tuple(Tick(coords[i][0], label) for i, (label, _) in enumerate(data)
                   if i % label_every == 0 or i == len(data) - 1)
    ticks = tuple(Tick(top + plot_h - plot_h * v / scale_max, f"{v:,}".replace(",", "\u202f"))
                  for v in range(0, scale_max + 1, step))
    return LineChart(width, height, points, area, ticks, labels, left, width - right, top,
                     base, data[-1][1] if data else 0)
