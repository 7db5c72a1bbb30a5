"""The inspector's map, phone first: their patrol area and what is in it, with forms to report a
case at a tapped point, record a dust-site inspection, close a work order and check cases."""

from __future__ import annotations

from typing import Any

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

from layers.cases.codes import CaseCategory
from layers.registry import (
    BILLBOARDS,
    CASES,
    COMPONENTS,
    DUST_SITES,
    GRIDS,
    ILLEGAL_BUILDINGS,
    PARKING_LOTS,
)
from webmap.base import Catalogue, LegendEntry, Place, new_page, subclass_names, tiled_legend
from webmap.basemaps import BaseMap
from webmap.layers import (
    COMPONENT_STATUS,
    ApiLayer,
    ColorBy,
    api_layer,
    leaflet_style,
    popup_fields,
    tiled_points,
)

INSPECTOR_JS = "/static/citygrid/inspector.js"
# What can be wrong with a component: the code list of a case's `problem` (POST /cases)
COMPONENT_PROBLEMS = {c.value: c.label_zh for c in CASES.field("problem").codes}

RISK = ColorBy.of_codes(
    BILLBOARDS, "risk_grade", {"A": "#27ae60", "B": "#f1c40f", "C": "#e67e22", "D": "#c0392b"}
)
BUILDING_STATUS = ColorBy.of_codes(
    ILLEGAL_BUILDINGS,
    "status",
    {"pending": "#c0392b", "ordered": "#e67e22", "demolished": "#7f8c8d", "retained": "#2980b9"},
)
LAST_INSPECTION = ColorBy(
    "last_result",
    {"problems": "#c0392b", "clean": "#27ae60", "none": "#95a5a6"},
    {"problems": "上次督查发现问题", "clean": "上次督查无问题", "none": "尚未督查"},
)
CASE_STATE = ColorBy(
    "overdue", {"true": "#c0392b", "false": "#e67e22"}, {"true": "已超期", "false": "处置时限内"}
)
DUST_FIELDS = [
    *popup_fields(DUST_SITES),
    {"name": "last_inspected_on", "label": "最近督查", "type": "date"},
    {"name": "last_problems_found", "label": "发现问题数", "type": "integer"},
]
CASE_FIELDS = [
    {"name": "category", "label": "案件类别", "type": "text"},
    *[f for f in popup_fields(CASES) if f["name"] in ("status", "reported_at", "deadline")],
    {"name": "address", "label": "地址", "type": "text"},
    {"name": "description", "label": "问题描述", "type": "text"},
]


class InspectorTools(JSCSSMixin, MacroElement):
    """The toolbar, the forms and the list of cases to check: all in inspector.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.inspector({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )
    default_js = [("citygrid_inspector_js", INSPECTOR_JS)]

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "InspectorTools"
        self.config = config


def _legend(title: str, color_by: ColorBy, point: bool = True) -> list[LegendEntry]:
    return [
        LegendEntry(f"{title}：{color_by.labels[v]}", c, c, point)
        for v, c in color_by.colors.items()
    ]


def inspector(
    basemap: BaseMap, categories: list[CaseCategory], shown: Catalogue, place: Place | None
) -> str:
    """我的巡查区域: the inspector's grids, the layers inside them (the components by tiles), and
    the field-work forms, a case on a tapped component among them."""
    page = new_page("我的巡查区域", basemap, place, zoom=14, county=False)
    area_style = {"color": "#1f3a93", "weight": 4, "fill": False}
    page.add_layer(
        ApiLayer(
            "我的网格",
            {
                "key": "patrol_area",
                "title": "我的网格",
                "url": "/grids",
                "params": {"level": "community"},
                "whole": True,
                "interactive": False,
                "pane": "cgBase",
                "fit": True,
                "style": area_style,
                "fields": [],
            },
        ),
        LegendEntry("我的巡查区域", "#1f3a93", "transparent"),
    )
    page.add_layer(
        api_layer(
            GRIDS,
            key="patrol_sections",
            title="片区网格",
            params={"level": "section"},
            style={"color": "#5dade2", "weight": 1, "fillOpacity": 0.04},
            whole=True,
        )
    )
    assert PARKING_LOTS.style is not None
    page.add_layer(api_layer(PARKING_LOTS), LegendEntry("停车场", "#1e8449", "#52be80"))
    page.add_layer(api_layer(ILLEGAL_BUILDINGS, color_by=BUILDING_STATUS))
    page.legend += _legend("违法建设", BUILDING_STATUS, point=False)
    assert BILLBOARDS.style is not None and DUST_SITES.style is not None
    page.add_layer(api_layer(BILLBOARDS, style=leaflet_style(BILLBOARDS.style, 5.0), color_by=RISK))
    page.legend += _legend("广告招牌", RISK)
    dust = api_layer(
        DUST_SITES,
        url="/patrol/dust_sites",
        whole=True,
        style=leaflet_style(DUST_SITES.style, 8.0, weight=2),
        color_by=LAST_INSPECTION,
    )
    dust.options["fields"] = DUST_FIELDS
    page.add_layer(dust)
    page.legend += _legend("扬尘现场", LAST_INSPECTION)
    assert CASES.style is not None
    cases = api_layer(
        CASES,
        key="open_cases",
        title="在办案件",
        url="/patrol/cases",
        whole=True,
        style=leaflet_style(CASES.style, 6.0, weight=2),
        color_by=CASE_STATE,
    )
    cases.options["fields"] = CASE_FIELDS
    page.add_layer(cases)
    page.legend += _legend("在办案件", CASE_STATE)
    page.add_layer(
        tiled_points(
            COMPONENTS,
            key="nearby_components",
            title="附近部件",
            color_by=COMPONENT_STATUS,
            codes={"subclass_code": subclass_names(shown, "component")},
            labels={"subclass_code": "小类名称"},
        )
    )
    page.legend += tiled_legend("附近部件", COMPONENT_STATUS)
    config = {
        "categories": [
            {"code": c.code, "group": c.major_name, "label": c.minor_name} for c in categories
        ],
        "subclasses": [
            {"code": r["code"], "group": r["class_name"], "label": r["name"]}
            for r in shown["subclasses"]
            if r["kind"] == "component"
        ],
        "problems": [{"code": c, "label": label} for c, label in COMPONENT_PROBLEMS.items()],
        "componentLayer": "nearby_components",
    }
    InspectorTools(config).add_to(page.map)
    return page.render(collapsed_layers=True)
