"""Data layers a page adds: fetched from the API by the current view, never embedded.

    page.add_layer(api_layer(GRIDS, params={"level": "street"}, title="街道网格"))

`api_layer` reads the layer's registry declaration for its title, style and popup fields; the
browser side (`static/citygrid/citygrid.js`) asks `/collections/{id}/items?bbox=…` on every move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template

from layers.registry import COMPONENTS, MERCHANTS, DrawLevel, Style
from layers.registry import Layer as RegistryLayer

VECTORGRID_JS = "/static/vendor/leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.js"


@dataclass(frozen=True)
class ColorBy:
    """One colour per value of a property, with the label the legend shows for it."""

    field: str
    colors: dict[str, str]
    labels: dict[str, str]

    @classmethod
    def of_codes(cls, layer: RegistryLayer, name: str, colors: dict[str, str]) -> ColorBy:
        """Colours for the code list of a registry field, labelled with its Chinese labels."""
        labels = {c.value: c.label_zh for c in layer.field(name).codes}
        return cls(name, colors, {value: labels[value] for value in colors})


class ApiLayer(Layer):
    """A Leaflet GeoJSON layer that loads what is in view from the API and reloads as the map moves."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = CityGrid.apiLayer({{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(
        self, name: str, options: dict[str, Any], show: bool = True, control: bool = True
    ) -> None:
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "ApiLayer"
        self.options = options


class ClusteredApiLayer(JSCSSMixin, ApiLayer):
    """An ApiLayer that shows the layer's counted vector-tile cells below its cluster zoom."""

    default_js = [("vectorgrid", VECTORGRID_JS)]


COMPONENT_STATUS = ColorBy.of_codes(
    COMPONENTS,
    "status",
    {"intact": "#27ae60", "damaged": "#e67e22", "lost": "#c0392b", "abandoned": "#7f8c8d"},
)
MERCHANT_RATING = ColorBy.of_codes(
    MERCHANTS, "rating", {"green": "#27ae60", "yellow": "#f1c40f", "red": "#c0392b"}
)
CLUSTER_COLOR = "#e67e22"


def leaflet_style(style: Style, radius: float = 5.0, **overrides: Any) -> dict[str, Any]:
    """A registry style as Leaflet path options."""
    return {
        "color": style.color,
        "fillColor": style.fill_color,
        "fillOpacity": style.fill_opacity,
        "weight": style.weight,
        "radius": radius,
        **overrides,
    }


def popup_fields(layer: RegistryLayer) -> list[dict[str, Any]]:
    """The layer's popup fields with Chinese labels and code labels, for the browser."""
    out = []
    for name in layer.popup_fields:
        f = layer.field(name)
        entry: dict[str, Any] = {"name": f.name, "label": f.label_zh, "type": f.type.value}
        if f.codes:
            entry["codes"] = {c.value: c.label_zh for c in f.codes}
        out.append(entry)
    return out


def api_layer(
    layer: RegistryLayer,
    *,
    key: str | None = None,
    title: str | None = None,
    params: dict[str, str] | None = None,
    style: dict[str, Any] | None = None,
    limit: int = 2000,
    min_zoom: int | None = None,
    show: bool = True,
    codes: dict[str, dict[str, str]] | None = None,
    url: str | None = None,
    whole: bool = False,
    color_by: ColorBy | None = None,
    clustered: bool = False,
) -> ApiLayer:
    """A data layer of a registry layer, optionally filtered by field values (`params`), fetched
    from `url` (default: the layer's items) by view or `whole`, coloured by a property;
    `clustered`: below the layer's declared cluster zoom, its counted cells from vector tiles."""
    assert layer.style is not None, f"{layer.id} has no map style"
    title = title or layer.title_zh
    fields = popup_fields(layer)
    for f in fields:
        if codes and f["name"] in codes:
            f["codes"] = codes[f["name"]]
    options = {
        "key": key or layer.id,
        "title": title,
        "url": url or f"/collections/{layer.id}/items",
        "whole": whole,
        "params": params or {},
        "style": style or leaflet_style(layer.style),
        "fields": fields,
        "limit": limit,
        "minZoom": min_zoom,
        "pane": _pane(layer),
    }
    if color_by is not None:
        options["colorBy"] = {"field": color_by.field, "colors": color_by.colors}
    if layer.sector is not None:
        options["sector"] = {
            "direction": layer.sector.direction_field,
            "angle": layer.sector.angle_field,
            "range": layer.sector.range_field,
            "defaultRange": layer.sector.default_range_m,
        }
    if clustered:
        options["clusters"] = _clusters(layer)
        return ClusteredApiLayer(title, options, show=show)
    return ApiLayer(title, options, show=show)


def _clusters(layer: RegistryLayer) -> dict[str, Any]:
    """Where the browser finds a point layer's counted cells, and below which zoom."""
    assert layer.geometry is not None and layer.geometry.is_point, f"{layer.id} is not points"
    assert layer.cluster_below_zoom is not None, f"{layer.id} declares no cluster zoom"
    return {
        "layer": layer.id,
        "url": f"/collections/{layer.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}",
        "clusterBelowZoom": layer.cluster_below_zoom,
        "clusterColor": CLUSTER_COLOR,
    }


PANES = {
    DrawLevel.FRAME: "cgGrids",
    DrawLevel.AREA: "cgAreas",
    DrawLevel.LINE: "cgLines",
    DrawLevel.POINT: "cgPoints",
}


def _pane(layer: RegistryLayer) -> str:
    """The drawing level (see citygrid.js): grids under areas under lines under points."""
    if layer.draw_level is not None:
        return PANES[layer.draw_level]
    if layer.geometry is not None and layer.geometry.is_point:
        return PANES[DrawLevel.POINT]
    if layer.geometry is not None and layer.geometry.is_line:
        return PANES[DrawLevel.LINE]
    return PANES[DrawLevel.AREA]


def county_layer(adcode: str, fit: bool = True) -> ApiLayer:
    """The county's official outline, loaded once (it is small), drawn under everything (the view
    fitted to it once drawn, if `fit`)."""
    options = {
        "key": "county",
        "title": "行政区边界",
        "url": "/county",
        "params": {"county": adcode},
        "whole": True,
        "interactive": False,
        "pane": "cgBase",
        "fit": fit,
        "style": {
            "color": "#333333",
            "weight": 3,
            "fill": True,
            "fillColor": "#ffffff",
            "fillOpacity": 0.6,
        },
        "fields": [],
    }
    return ApiLayer("行政区边界", options)


class TiledPointLayer(JSCSSMixin, Layer):
    """A point layer drawn from the API's vector tiles (Leaflet.VectorGrid): counted clusters
    below the layer's cluster zoom, single points coloured by a property above it."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = CityGrid.tiledPoints({{ this.options|tojson }});
        {% endmacro %}
        """
    )
    default_js = [("vectorgrid", VECTORGRID_JS)]

    def __init__(self, name: str, options: dict[str, Any], show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "TiledPointLayer"
        self.options = options


def tiled_points(
    layer: RegistryLayer,
    *,
    color_by: ColorBy,
    key: str | None = None,
    title: str | None = None,
    codes: dict[str, dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
    show: bool = True,
) -> TiledPointLayer:
    """A point layer of the registry drawn from its vector tiles, clustered below its declared
    `cluster_below_zoom`, its popups labelled by the registry (`codes` and `labels` for fields
    that hold a reference, such as a subclass code shown by its name)."""
    assert layer.style is not None, f"{layer.id} has no map style"
    fields = popup_fields(layer)
    for f in fields:
        if codes and f["name"] in codes:
            f["codes"] = codes[f["name"]]
        if labels and f["name"] in labels:
            f["label"] = labels[f["name"]]
    name = title or layer.title_zh
    options = {
        "key": key or layer.id,
        "title": name,
        **_clusters(layer),
        "style": leaflet_style(layer.style, 5.0, weight=1),
        "colorBy": {"field": color_by.field, "colors": color_by.colors},
        "fields": fields,
        "pane": _pane(layer),
    }
    return TiledPointLayer(name, options, show=show)
