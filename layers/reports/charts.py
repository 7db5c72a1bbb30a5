"""Pictures of a bulletin drawn server-side with matplotlib (Agg): a choropleth map of the county,
a trend chart and grouped bars, every label in the CJK font (never tofu boxes)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import shapely

from layers.reports.fonts import CjkFont

DPI = 150


def _figure(font: CjkFont, width: float, height: float) -> tuple[Any, Any, Any]:
    """A figure with one axes (no pyplot: no global state between requests) and the font."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    figure = Figure(figsize=(width, height), dpi=DPI)
    return figure, figure.add_subplot(), FontProperties(fname=str(font.path))


def _whole_numbers() -> Any:
    """Ticks at whole numbers only: counts have no halves."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _png(figure: Any) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    return out.getvalue()


def _rings(geometry: shapely.Geometry) -> list[Any]:
    import numpy as np

    return [
        np.asarray(part.exterior.coords)[:, :2]
        for part in shapely.get_parts(geometry)
        if isinstance(part, shapely.Polygon) and not part.is_empty
    ]


def choropleth(
    font: CjkFont,
    areas: Sequence[tuple[shapely.Geometry, float]],
    outline: shapely.Geometry | None,
    title: str,
    legend: str,
) -> bytes:
    """Areas (in metres of one zone) filled by value, the county's outline on top."""
    from matplotlib.collections import PolyCollection

    figure, axes, face = _figure(font, 7.0, 6.0)
    rings, values = [], []
    for geometry, value in areas:
        for ring in _rings(geometry):
            rings.append(ring)
            values.append(value)
    patches = PolyCollection(rings, cmap="YlOrRd", edgecolors="#777777", linewidths=0.3)
    patches.set_array(values)
    patches.set_clim(0, max([*values, 1]))
    axes.add_collection(patches)
    if outline is not None:
        for ring in _rings(outline):
            axes.plot(ring[:, 0], ring[:, 1], color="#1f3b5a", linewidth=1.0)
    axes.autoscale_view()
    axes.set_aspect("equal")
    axes.set_axis_off()
    axes.set_title(title, fontproperties=face, fontsize=12)
    bar = figure.colorbar(patches, ax=axes, shrink=0.7)
    bar.ax.yaxis.set_major_locator(_whole_numbers())
    bar.set_label(legend, fontproperties=face)
    return _png(figure)


def trend(
    font: CjkFont, periods: Sequence[str], series: dict[str, Sequence[int]], title: str
) -> bytes:
    """Stacked bars per period, one colour per series (case classes)."""
    figure, axes, face = _figure(font, 7.5, 3.6)
    bottom = [0] * len(periods)
    for name, values in series.items():
        axes.bar(periods, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for x, total in enumerate(bottom):
        axes.text(x, total, str(total), ha="center", va="bottom", fontsize=7)
    axes.set_title(title, fontproperties=face, fontsize=12)
    axes.set_ylabel("案件数（件）", fontproperties=face)
    axes.yaxis.set_major_locator(_whole_numbers())
    for label in axes.get_xticklabels():
        label.set_fontproperties(face)
        label.set_fontsize(8)
        label.set_rotation(45)
    if series:
        axes.legend(prop=face, loc="upper left", ncols=3)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def grouped_bars(
    font: CjkFont, groups: Sequence[str], series: dict[str, Sequence[float]], title: str
) -> bytes:
    """Bars side by side per group, one per series."""
    figure, axes, face = _figure(font, 7.5, 3.6)
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        axes.bar(xs, values, width=width, label=name)
    axes.set_xticks(range(len(groups)), groups)
    for label in axes.get_xticklabels():
        label.set_fontproperties(face)
        label.set_fontsize(8)
    axes.yaxis.set_major_locator(_whole_numbers())
    axes.set_title(title, fontproperties=face, fontsize=12)
    axes.legend(prop=face)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)
