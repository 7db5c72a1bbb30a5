"""The public responsibility card (智慧责任牌) of a 门前三包 merchant, opened from the QR code on its
wall by its unguessable token, and the problem reports passers-by send from it.

The card shows what the public may know: the shop, its frontage, its duties, the rating and the
inspector answering for its grid; never a contact, a phone number or anyone's account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, text

from gis.validate import Limits
from layers.cases import casework
from layers.cases.workcalendar import Calendars
from layers.engine import access
from layers.engine.access import Viewer
from layers.engine.editing import EditContext
from layers.errors import FeatureNotFound, InvalidFeature
from layers.registry import MERCHANTS, Role

TOKEN_PATTERN = re.compile(r"^[0-9a-f]{32}$")
# what a passer-by may report at a shop: the frontage kinds of problem the rating counts
REPORT_CATEGORIES = {
    "E0502": "店外经营",
    "E0506": "占道经营",
    "E0107": "乱堆物堆料",
    "E0207": "违规设置落地广告",
    "E0102": "暴露垃圾",
}
DESCRIPTION_MAX = 300
DUTIES = (
    ("市容整洁", "门前无乱搭建、乱张贴、乱涂写、乱刻画、乱吊挂、乱堆放，不超出门窗经营"),
    ("环境卫生", "门前无垃圾、污水、积雪，垃圾分类投放，及时清扫保洁"),
    ("秩序良好", "门前无乱停车、占道经营、乱设摊点，维护公共设施完好"),
)
PUBLIC_ACTOR = "public-card"  # the audit's name for reports sent from a card


@dataclass(frozen=True)
class Card:
    """What a merchant's public card shows."""

    id: int
    adcode: str
    name: str
    address: str | None
    frontage: str | None
    frontage_m: float | None
    rating: str | None
    grid_code: str | None
    grid_name: str | None
    inspector: str | None


def _not_found() -> FeatureNotFound:
    return FeatureNotFound(
        "No responsibility card has this address.", "未找到该门前三包责任牌，请核对二维码。"
    )


def card(conn: Connection, token: str) -> Card:
    """The card opened by `token`; not found for a token no merchant holds."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise _not_found()
    row = conn.execute(
        text("""
        SELECT m.id, m.adcode, m.name, m.address, m.frontage, m.frontage_m, m.rating, m.grid_code,
               (SELECT g.name FROM grids AS g WHERE g.code = m.grid_code
                ORDER BY g.valid_to IS NULL DESC, g.valid_from DESC LIMIT 1) AS grid_name,
               citygrid_grid_inspector(m.grid_code) AS inspector
        FROM merchants AS m WHERE m.card_token = :token AND m.geom IS NOT NULL
    """),
        {"token": token},
    ).one_or_none()
    if row is None:
        raise _not_found()
    return Card(*row)


def card_token(conn: Connection, merchant_id: int, viewer: Viewer) -> str:
    """The card token of a merchant the viewer may read (one they may not read looks absent)."""
    params: dict[str, object] = {"id": merchant_id}
    visible = access.area_clause(MERCHANTS, viewer, params, alias="t")
    token = conn.execute(
        text(f"SELECT t.card_token FROM merchants AS t WHERE t.id = :id AND {visible}"), params
    ).scalar_one_or_none()
    if token is None:
        raise FeatureNotFound(
            f"No merchant {merchant_id} in merchants.", f"门前三包商户中不存在 {merchant_id}。"
        )
    return str(token)


def checked_report(category: str, description: str) -> tuple[str, str]:
    """The category and description of a report, refused when not from the list or too long."""
    if category not in REPORT_CATEGORIES:
        raise InvalidFeature(
            f"category must be one of {', '.join(REPORT_CATEGORIES)}.",
            f"问题类型必须是：{'、'.join(REPORT_CATEGORIES.values())}。",
            code="property_not_in_code_list",
        )
    description = description.strip()
    if not 2 <= len(description) <= DESCRIPTION_MAX:
        raise InvalidFeature(
            f"The description needs 2 to {DESCRIPTION_MAX} characters.",
            f"问题描述须为 2 至 {DESCRIPTION_MAX} 个字。",
            code="description_length",
        )
    if any(ord(c) < 32 and c not in "\n\t" for c in description):
        raise InvalidFeature(
            "The description holds control characters.",
            "问题描述含有不可见的控制字符。",
            code="description_invalid",
        )
    return category, description


def report(
    conn: Connection,
    found: Card,
    category: str,
    description: str,
    calendars: Calendars | None = None,
    verify_within: timedelta = casework.VERIFY_WITHIN,
) -> int:
    """A public report at the merchant's point, awaiting verification like every public report;
    returns the new case's id."""
    category, description = checked_report(category, description)
    geometry = conn.execute(
        text("SELECT ST_AsGeoJSON(geom, 7)::json FROM merchants WHERE id = :id"), {"id": found.id}
    ).scalar_one()
    # the desk's path for a report from the public, in the merchant's county only
    desk = Viewer(PUBLIC_ACTOR, Role.DISPATCHER, "扫码举报", counties=(found.adcode,))
    ctx = EditContext(viewer=desk, limits=Limits())
    feature = {
        "type": "Feature",
        "geometry": geometry,
        "properties": {
            "category_code": category,
            "description": f"【门前三包·{found.name}】{description}",
            "address": found.address,
            "source": "public",
            "merchant_id": found.id,
        },
    }
    return casework.report(conn, feature, None, ctx, calendars, verify_within).id
