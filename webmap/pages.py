"""The map pages: each builds a `MapPage` from the factory and adds its API-fed layers."""

from __future__ import annotations

from layers.cases.codes import CaseCategory
from layers.registry import (
    BILLBOARDS,
    CASES,
    COMPONENTS,
    DUST_SITES,
    GRIDS,
    ILLEGAL_BUILDINGS,
    MERCHANTS,
    PARKING_LOTS,
    VEHICLES,
    Style,
    spatial_layers,
)
from webmap.base import (
    Catalogue,
    LegendEntry,
    MapPage,
    Place,
    named,
    new_page,
    subclass_names,
    tiled_legend,
)
from webmap.basemaps import BaseMap
from webmap.layers import (
    COMPONENT_STATUS,
    MERCHANT_RATING,
    api_layer,
    leaflet_style,
    tiled_points,
)

PAGES = {
    "overview": ("/maps/overview", "综合概览"),
    "planner": ("/maps/planner", "网格规划"),
    "inspector": ("/maps/inspector", "我的巡查区域"),
    "leader": ("/maps/leader", "领导驾驶舱"),
    "timeline": ("/maps/leader/timeline", "案件热力逐周变化"),
    "command": ("/maps/command", "城市管理大指挥"),
}

GRID_LEVEL_STYLES = {
    "street": ("街道网格", {"color": "#1f3a93", "weight": 3, "fillOpacity": 0.0, "fill": True}),
    "community": (
        "社区网格",
        {"color": "#2874a6", "weight": 2, "dashArray": "6 4", "fillOpacity": 0.0, "fill": True},
    ),
    "section": (
        "片区网格",
        {"color": "#5dade2", "weight": 1, "fillColor": "#aed6f1", "fillOpacity": 0.08},
    ),
}


def _legend(title: str, style: Style, point: bool = False) -> LegendEntry:
    return LegendEntry(title, style.color, style.fill_color, point)


def _add_other_layers(page: MapPage, drawn: set[str]) -> None:
    """Every styled layer the overview does not draw its own way, as declared (the cases last):
    points that declare a cluster zoom (hundreds or thousands in a county) as counted cells
    until zoomed in."""
    for layer in spatial_layers():
        if layer.id in drawn or layer.style is None:
            continue
        assert layer.geometry is not None
        fill = "transparent" if layer.geometry.is_line else layer.style.fill_color
        entry = LegendEntry(layer.title_zh, layer.style.color, fill, layer.geometry.is_point)
        dense = layer.geometry.is_point and layer.cluster_below_zoom is not None
        page.add_layer(api_layer(layer, clustered=dense), entry)


def overview(
    basemap: BaseMap, categories: list[CaseCategory], shown: Catalogue, place: Place | None
) -> str:
    """综合概览: the county, the three grid levels and every layer, fetched by view (the
    components, tens of thousands, by vector tiles: clustered until zoomed in)."""
    page = new_page(named(place, "城市管理综合概览"), basemap, place)
    for level, (title, style) in GRID_LEVEL_STYLES.items():
        page.add_layer(
            api_layer(
                GRIDS, key=f"grids_{level}", title=title, params={"level": level}, style=style
            ),
            LegendEntry(title, str(style["color"]), "transparent"),
        )
    for layer in (ILLEGAL_BUILDINGS, PARKING_LOTS):
        assert layer.style is not None
        page.add_layer(api_layer(layer), _legend(layer.title_zh, layer.style))
    for layer, radius in ((DUST_SITES, 6.0), (BILLBOARDS, 3.5)):
        assert layer.style is not None
        page.add_layer(
            api_layer(layer, style=leaflet_style(layer.style, radius)),
            _legend(layer.title_zh, layer.style, True),
        )
    page.add_layer(
        tiled_points(
            COMPONENTS,
            color_by=COMPONENT_STATUS,
            codes={"subclass_code": subclass_names(shown, "component")},
            labels={"subclass_code": "小类名称"},
        )
    )
    page.legend += tiled_legend("部件", COMPONENT_STATUS)
    page.add_layer(tiled_points(MERCHANTS, color_by=MERCHANT_RATING))  # thousands: as tiles
    page.legend += tiled_legend("门前三包商户", MERCHANT_RATING)
    # vehicles move: their yards say nothing on this map, their positions belong to the live one
    own_way = (
        *(GRIDS, ILLEGAL_BUILDINGS, PARKING_LOTS, DUST_SITES, BILLBOARDS, CASES, COMPONENTS),
        *(MERCHANTS, VEHICLES),
    )
    _add_other_layers(page, {layer.id for layer in own_way})
    assert CASES.style is not None
    labels = {c.code: f"{c.major_name}/{c.minor_name}" for c in categories}
    cases = api_layer(
        CASES,
        title="最近案件",
        params={"sortby": "-reported_at"},
        limit=1000,
        style=leaflet_style(CASES.style, 3.0),
        codes={"category_code": labels},
    )
    cases.options["fields"] += [  # the camera, merchant or garbage point linked, where one is
        {"name": f.name, "label": f.label_zh, "type": "text", "optional": True}
        for f in CASES.fields
        if f.references and f.name != "category_code"
    ]
    page.add_layer(cases, _legend("最近案件（视图内最新1000条）", CASES.style, True))
    return page.render()
