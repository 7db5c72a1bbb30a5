"""The inspector's map, phone first: their patrol area and what is in it, with forms to report a
case at a tapped point (or on a component, a merchant, a garbage point), record a dust-site
inspection, a fume check or a 门前三包 inspection, close a work order and check cases."""

from __future__ import annotations

from typing import Any

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

from layers.cases.codes import CaseCategory
from layers.merchants.cards import REPORT_CATEGORIES as FRONTAGE_CATEGORIES
from layers.registry import (
    BIKE_PARKING_LINES,
    BIKE_PARKING_POINTS,
    BILLBOARDS,
    CAMERAS,
    CASES,
    COMPONENTS,
    DUST_SITES,
    GARBAGE_POINTS,
    GRIDS,
    ILLEGAL_BUILDINGS,
    MERCHANT_INSPECTIONS,
    MERCHANTS,
    PARKING_LOTS,
    RESTAURANTS,
    STATIONS,
)
from layers.registry import Layer as RegistryLayer
from webmap.base import (
    Catalogue,
    LegendEntry,
    MapPage,
    Place,
    new_page,
    subclass_names,
    tiled_legend,
)
from webmap.basemaps import BaseMap
from webmap.layers import (
    COMPONENT_STATUS,
    MERCHANT_RATING,
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
    # what the case is linked to, shown only where it is
    {"name": "camera", "label": "发现视频点位", "type": "text", "optional": True},
    {"name": "merchant", "label": "涉及商户", "type": "text", "optional": True},
    {"name": "garbage_point", "label": "涉及投放点", "type": "text", "optional": True},
]
# what a case on a garbage-sorting point is about, most frequent first
GARBAGE_POINT_CATEGORIES = ("E0108", "E0102", "E0103", "E0118")
# the reports' other systems in the area, drawn under the cases and the inspector's own layers;
# the merchants, restaurants and garbage points carry field-work actions (inspector.js)
SYSTEM_LAYERS_SHOWN = (GARBAGE_POINTS, RESTAURANTS, STATIONS)
SYSTEM_LAYERS_HIDDEN = (CAMERAS, BIKE_PARKING_POINTS, BIKE_PARKING_LINES)


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


def _codes(layer: RegistryLayer, name: str) -> list[dict[str, str]]:
    """A field's code list as the forms offer it."""
    return [{"code": c.value, "label": c.label_zh} for c in layer.field(name).codes]


def _point_legend(layer_title: str, color: str) -> LegendEntry:
    return LegendEntry(layer_title, color, color, True)


def _add_system_layers(page: MapPage) -> None:
    """The merchants coloured by their rating, then the other systems' layers in the area
    (counted cells until zoomed in where a county has hundreds); some hidden until asked for."""
    assert MERCHANTS.style is not None
    merchants = api_layer(
        MERCHANTS,
        style=leaflet_style(MERCHANTS.style, 6.0, weight=1),
        color_by=MERCHANT_RATING,
        clustered=True,
    )
    page.add_layer(merchants)
    page.legend += _legend("门前三包商户", MERCHANT_RATING)
    layers = [(layer, True) for layer in SYSTEM_LAYERS_SHOWN]
    layers += [(layer, False) for layer in SYSTEM_LAYERS_HIDDEN]
    for layer, show in layers:
        assert layer.style is not None and layer.geometry is not None
        point = layer.geometry.is_point
        style = leaflet_style(layer.style, 6.0) if point else None
        dense = point and layer.cluster_below_zoom is not None
        page.add_layer(api_layer(layer, style=style, show=show, clustered=dense))
        if point:
            page.legend.append(_point_legend(layer.title_zh, layer.style.fill_color))
        else:
            page.legend.append(LegendEntry(layer.title_zh, layer.style.color, "transparent"))


def _short_list(categories: list[CaseCategory], wanted: tuple[str, ...]) -> list[dict[str, str]]:
    """The categories of `wanted` the county's catalogue holds, in that order."""
    by_code = {c.code: c for c in categories}
    return [
        {"code": code, "group": by_code[code].major_name, "label": by_code[code].minor_name}
        for code in wanted
        if code in by_code
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
    _add_system_layers(page)
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
        "merchantCategories": _short_list(categories, tuple(FRONTAGE_CATEGORIES)),
        "garbageCategories": _short_list(categories, GARBAGE_POINT_CATEGORIES),
        "inspectionResults": _codes(MERCHANT_INSPECTIONS, "result"),
    }
    InspectorTools(config).add_to(page.map)
    return page.render(collapsed_layers=True)
