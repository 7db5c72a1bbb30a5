"""The planner's map: grid levels from the API, drawing tools that save through /grids, problems in red."""

from __future__ import annotations

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

from layers.registry import GRIDS
from webmap.base import LegendEntry, Place, named, new_page
from webmap.basemaps import BaseMap
from webmap.layers import ApiLayer, popup_fields

DRAW_JS = "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.js"
DRAW_CSS = "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.css"
PLANNER_JS = "/static/citygrid/planner.js"

LEVELS = {
    "street": ("街道网格", {"color": "#1f3a93", "weight": 3, "fillOpacity": 0.0, "fill": False}),
    "community": (
        "社区网格",
        {"color": "#2874a6", "weight": 2, "dashArray": "6 4", "fillOpacity": 0.0, "fill": False},
    ),
    "section": (
        "片区网格（可编辑）",
        {"color": "#2e86c1", "weight": 1.5, "fillColor": "#aed6f1", "fillOpacity": 0.15},
    ),
}


class PlannerTools(JSCSSMixin, MacroElement):
    """Leaflet.Draw in Chinese, merge selection, the problems panel: all in planner.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.planner({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )
    default_js = [("leaflet_draw_js", DRAW_JS), ("citygrid_planner_js", PLANNER_JS)]
    default_css = [("leaflet_draw_css", DRAW_CSS)]

    def __init__(self) -> None:
        super().__init__()
        self._name = "PlannerTools"


def planner(basemap: BaseMap, place: Place | None) -> str:
    """网格规划: three grid levels, split/merge/redraw/draw saved through the API, live checks."""
    # planners work on the grids: the view fits the street grids, not the county's boundary
    page = new_page(named(place, "网格规划与调整"), basemap, place, fit_county=False)
    for level, (title, style) in LEVELS.items():
        options = {
            "key": f"grids_{level}",
            "title": title,
            "url": "/grids",
            "params": {"level": level, **({"county": place.adcode} if place else {})},
            "whole": True,
            "fit": level == "street",
            "interactive": level == "section",
            "pane": "cgGrids",
            "style": style,
            "fields": popup_fields(GRIDS),
        }
        page.add_layer(
            ApiLayer(title, options), LegendEntry(title, str(style["color"]), "transparent")
        )
    page.legend.append(LegendEntry("拓扑问题（空隙、重叠、越界等）", "#e74c3c", "#e74c3c"))
    PlannerTools().add_to(page.map)
    return page.render()
