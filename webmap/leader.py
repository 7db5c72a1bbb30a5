"""The leaders' dashboard and its animated weekly heatmap: every number comes from `/stats`,
re-asked whenever the map moves or a filter changes; the pages embed no data."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.plugins import HeatMap, HeatMapWithTime
from folium.template import Template

from layers.cases.codes import CaseCategory
from webmap.base import Catalogue, LegendEntry, Place, named, new_page
from webmap.basemaps import BaseMap
from webmap.leader_systems import SystemsPanel

LEADER_JS = "/static/citygrid/leader.js"
PRESENCE_JS = "/static/citygrid/presence.js"
MEASURES = {
    "cases": "案件数",
    "per_km2": "每平方公里案件数",
    "closed_rate": "结案率",
    "on_time_rate": "按期结案率",
    "overdue": "超期数",
}
LEVELS = {"street": "街道", "community": "社区", "section": "片区网格"}


KIND_PREFIX = {"event": ("E", "事件"), "component": ("C", "部件")}


def _classes(shown: Catalogue) -> list[dict[str, str]]:
    """The catalogue's classes as the stats API filters them (E01, C01), labelled with their kind."""
    out = []
    for c in shown["classes"]:
        prefix, kind = KIND_PREFIX[str(c["kind"])]
        out.append({"code": f"{prefix}{c['code']}", "label": f"{kind}·{c['name']}"})
    return out


class Dashboard(JSCSSMixin, MacroElement):
    """Filters, heatmap, choropleth, worst grids, trend chart and overdue cases: leader.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.leader({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )
    default_js = [*HeatMap.default_js, ("citygrid_leader_js", LEADER_JS)]

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "Dashboard"
        self.config = config


class Presence(JSCSSMixin, MacroElement):
    """The day's presence of inspectors and sweeping coverage of vehicles: presence.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.presence({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )
    default_js = [("citygrid_presence_js", PRESENCE_JS)]


def dashboard(
    basemap: BaseMap, categories: list[CaseCategory], shown: Catalogue, place: Place | None
) -> str:
    """领导驾驶舱: heatmap by view, choropleth of an indicator, worst ten, trend, overdue cases."""
    page = new_page(named(place, "城市管理领导驾驶舱"), basemap, place)
    page.legend.append(LegendEntry("案件热力（按视图重新汇总）", "#e67e22", "#f5b041"))
    config = {"classes": _classes(shown), "measures": MEASURES, "levels": LEVELS}
    Dashboard(config).add_to(page.map)
    Presence().add_to(page.map)
    SystemsPanel().add_to(page.map)
    return page.render(collapsed_layers=True)


class ApiHeatMapWithTime(HeatMapWithTime):
    """folium's HeatMapWithTime layer and player, its weekly frames fetched from the API."""

    _own = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.timeline({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )
    default_js = [*HeatMapWithTime.default_js, ("citygrid_leader_js", LEADER_JS)]

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__([], name="案件周热力", control=False, show=False)  # added by leader.js
        self.config = config
        # folium's header (the time-dimension heat layer and its player), our script (the data)
        self._template = SimpleNamespace(
            module=SimpleNamespace(
                header=HeatMapWithTime._template.module.header, script=self._own.module.script
            )
        )


def timeline(
    basemap: BaseMap, categories: list[CaseCategory], shown: Catalogue, place: Place | None
) -> str:
    """案件周热力动画: one heatmap per week of the period, played in turn."""
    page = new_page(named(place, "案件热力逐周变化"), basemap, place)
    ApiHeatMapWithTime({"classes": _classes(shown)}).add_to(page.map)
    return page.render(collapsed_layers=True)
