"""The leaders' panel of the bureau's other systems: the monthly fume exceedance rate of the last
twelve months and the merchants' ratings per street, both asked of `/stats` by the page."""

from __future__ import annotations

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

SYSTEMS_JS = "/static/citygrid/leader_systems.js"
SYSTEMS_CSS = "/static/citygrid/leader_systems.css"


class SystemsPanel(JSCSSMixin, MacroElement):
    """油烟超标率趋势 and 门前三包商户评级（按街道）: leader_systems.js."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            CityGrid.leaderSystems({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )
    default_js = [("citygrid_leader_systems_js", SYSTEMS_JS)]
    default_css = [("citygrid_leader_systems_css", SYSTEMS_CSS)]

    def __init__(self) -> None:
        super().__init__()
        self._name = "SystemsPanel"
