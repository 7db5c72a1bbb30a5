"""The command centre's live map (大指挥): vehicles and inspectors moving as they report, alarms as
they are raised, filters by kind and company, a vehicle's track played back. Everything comes
from the live stream `/tracking/live` and `/tracking/vehicles/{id}/track`; the page embeds no data."""

from __future__ import annotations

from typing import Any

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

from layers.registry import VEHICLE_KINDS
from layers.tracking.reading import ALARM_LABELS, PERSON
from webmap.base import LegendEntry, Place, named, new_page
from webmap.basemaps import BaseMap

COMMAND_JS = "/static/citygrid/command.js"
COMMAND_CSS = "/static/citygrid/command.css"
KIND_LABELS = {
    "muck": "渣土",
    "sanitation": "环卫",
    "kitchen_waste": "餐厨",
    "enforcement": "执法",
    PERSON: "巡查员",
}
STATES = {  # state → (label, colour)
    "moving": ("行驶中", "#27ae60"),
    "stopped": ("停止", "#2e86c1"),
    "offline": ("离线", "#95a5a6"),
}
ALARM_COLOR = "#e74c3c"
SPEEDS = (1, 10, 60, 300)  # playback: times faster than the track was driven


class CommandCentre(JSCSSMixin, MacroElement):
    """Live markers, alarm list, filters and playback: all in command.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.command({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )
    default_js = [("citygrid_command_js", COMMAND_JS)]
    default_css = [("citygrid_command_css", COMMAND_CSS)]

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "CommandCentre"
        self.config = config


def command(basemap: BaseMap, place: Place | None) -> str:
    """大指挥: the fleet and the inspectors on duty live, alarms as they happen, track playback."""
    assert set(KIND_LABELS) == {c.value for c in VEHICLE_KINDS} | {PERSON}
    page = new_page(named(place, "城市管理大指挥"), basemap, place)
    for label, color in STATES.values():
        page.legend.append(LegendEntry(f"车辆{label}", color, color, True))
    page.legend.append(LegendEntry("巡查员（人员）", "#8e44ad", "#d2b4de", True))
    page.legend.append(LegendEntry("报警位置", ALARM_COLOR, ALARM_COLOR, True))
    page.legend.append(LegendEntry("回放轨迹", "#f39c12", "transparent"))
    config = {
        "county": place.adcode if place is not None else None,
        "kinds": KIND_LABELS,
        "states": {state: {"label": label, "color": c} for state, (label, c) in STATES.items()},
        "alarms": ALARM_LABELS,
        "alarmColor": ALARM_COLOR,
        "speeds": list(SPEEDS),
    }
    CommandCentre(config).add_to(page.map)
    return page.render(collapsed_layers=True)
