"""The map factory every page uses: offline assets, base map, Chinese controls, legend, API layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any, TypeVar

import folium
from branca.element import MacroElement
from folium import plugins
from folium.elements import JSCSSMixin
from folium.template import Template

from webmap.assets import OfflineFigure
from webmap.basemaps import BaseMap
from webmap.layers import CLUSTER_COLOR, ApiLayer, ColorBy, TiledPointLayer, county_layer

L = TypeVar("L", ApiLayer, TiledPointLayer)
CITYGRID_JS = "/static/citygrid/citygrid.js"
CITYGRID_CSS = "/static/citygrid/citygrid.css"


@dataclass(frozen=True)
class LegendEntry:
    """One line of the legend."""

    label: str
    color: str
    fill: str
    point: bool = False


class _PageSetup(JSCSSMixin):
    """Loads citygrid.js (after Leaflet), tells it the display datum, puts the map's UI in Chinese."""

    default_js = [("citygrid_js", CITYGRID_JS)]
    default_css = [("citygrid_css", CITYGRID_CSS)]

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.datum = {{ this.datum|tojson }};
            CityGrid.county = {{ this.county|tojson }};
            CityGrid.localize({{ this._parent.get_name() }});
            L.control.scale({imperial: false, position: "bottomright"}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, datum: str, county: str | None) -> None:
        super().__init__()
        self.datum, self.county = datum, county


class _Account(MacroElement):
    """Who is signed in, with a sign-out button (filled in by citygrid.js from /auth/me)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.account({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


class _Box(MacroElement):
    """A fixed box on the map (title, legend) holding Chinese HTML."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function () {
                var box = L.control({position: {{ this.position|tojson }}});
                box.onAdd = function () {
                    var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                    div.innerHTML = {{ this.html|tojson }};
                    return div;
                };
                box.addTo({{ this._parent.get_name() }});
            })();
        {% endmacro %}
        """
    )

    def __init__(self, position: str, css_class: str, html: str) -> None:
        super().__init__()
        self.position, self.css_class, self.html = position, css_class, html


def _legend(title: str, entries: list[LegendEntry]) -> _Box:
    rows = "".join(
        f'<div><i class="{"cg-point" if e.point else ""}" style="border-color:{escape(e.color)};'
        f'background:{escape(e.fill)}"></i>{escape(e.label)}</div>'
        for e in entries
    )
    return _Box("bottomright", "cg-legend", f"<h4>{escape(title)}</h4>{rows}")


class _Measure(JSCSSMixin, MacroElement):
    """Distance and area by clicking the map: citygrid.js's control in leaflet-measure's look (its
    stylesheet only; its script compiles templates with eval, which the pages' CSP refuses)."""

    default_css = plugins.MeasureControl.default_css

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = CityGrid.measureControl({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


@dataclass(frozen=True)
class Place:
    """The county a page shows (from its stored row) and those its viewer may switch to."""

    adcode: str
    name: str
    centre: tuple[float, float]  # lon, lat
    bounds: tuple[float, float, float, float]  # west, south, east, north
    choices: tuple[tuple[str, str], ...] = ()  # (adcode, name) of every county the viewer holds

    def title(self, what: str) -> str:
        """A page title naming the county."""
        return f"{self.name}{what}"


def named(place: Place | None, what: str) -> str:
    """A page title naming the county it shows (or none before a county is added)."""
    return place.title(what) if place is not None else what


def _title_html(title: str, place: Place | None) -> str:
    if place is None or len(place.choices) < 2:
        return escape(title)
    links = "".join(
        f'<b aria-current="page">{escape(name)}</b>'
        if adcode == place.adcode
        else f'<a href="?county={escape(adcode)}" data-county="{escape(adcode)}">{escape(name)}</a>'
        for adcode, name in place.choices
    )
    return f'{escape(title)}<nav class="cg-counties" aria-label="切换县级行政区">{links}</nav>'


@dataclass
class MapPage:
    """A page being built: the folium map, its figure, and the legend entries collected so far."""

    map: folium.Map
    figure: OfflineFigure
    legend: list[LegendEntry] = field(default_factory=list)

    def add_layer(self, layer: L, legend: LegendEntry | None = None) -> L:
        """Add an API-fed data layer, by view or by tiles (and its legend line)."""
        layer.add_to(self.map)
        if legend:
            self.legend.append(legend)
        return layer

    def render(self, collapsed_layers: bool = False) -> str:
        """The finished HTML page (layer control and legend added last)."""
        folium.LayerControl(collapsed=collapsed_layers, position="topright").add_to(self.map)
        _legend("图例", self.legend).add_to(self.map)
        return self.figure.render()


Catalogue = dict[
    str, list[dict[str, Any]]
]  # classes and subclasses, as layers.cases.catalogue reads them


def subclass_names(shown: Catalogue, kind: str) -> dict[str, str]:
    """Subclass code → Chinese name, for the subclasses of one kind (event, component)."""
    return {str(r["code"]): str(r["name"]) for r in shown["subclasses"] if r["kind"] == kind}


CHINA = (35.0, 105.0)  # where a map with no county yet opens (latitude, longitude)


def new_page(
    title: str,
    basemap: BaseMap,
    place: Place | None = None,
    zoom: int = 10,
    county: bool = True,
    fit_county: bool = True,
) -> MapPage:
    """A map of the county `place` (its centre, a picker of the viewer's other counties) with the
    chosen base map, Chinese controls and the county outline (the view fitted to it once drawn,
    unless `fit_county` is false: then a layer of the page fits it), ready for data layers."""
    figure = OfflineFigure(title=title, allowed_urls=basemap.tile_urls)
    center = (place.centre[1], place.centre[0]) if place is not None else CHINA
    m = folium.Map(
        location=list(center),
        zoom_start=zoom if place is not None else 4,
        tiles=None,
        control_scale=False,
        prefer_canvas=False,
    )
    figure.add_child(m)
    basemap.add_to(m)
    _PageSetup("gcj02" if basemap.gcj02 else "wgs84", place.adcode if place else None).add_to(m)
    _Box("topright", "cg-title", _title_html(title, place)).add_to(m)
    _Account().add_to(m)
    plugins.Fullscreen(position="topleft", title="全屏显示", title_cancel="退出全屏").add_to(m)
    plugins.LocateControl(
        position="topleft",
        strings={"title": "定位到我的位置", "popup": "您在此点附近 {distance} 米范围内"},
        locateOptions={"enableHighAccuracy": True},
    ).add_to(m)
    _Measure().add_to(m)
    page = MapPage(m, figure)
    if county and place is not None:
        west, south, east, north = place.bounds
        m.fit_bounds([[south, west], [north, east]])
        outline = county_layer(place.adcode, fit=fit_county)
        page.add_layer(outline, LegendEntry("行政区边界", "#333333", "#ffffff"))
    return page


def tiled_legend(title: str, color_by: ColorBy) -> list[LegendEntry]:
    """The legend of a tiled point layer: its clusters, then one line per colour of its points."""
    return [
        LegendEntry(f"{title}（聚合，数字为个数）", "#ffffff", CLUSTER_COLOR, True),
        *(
            LegendEntry(f"{title}：{color_by.labels[v]}", c, c, True)
            for v, c in color_by.colors.items()
        ),
    ]
