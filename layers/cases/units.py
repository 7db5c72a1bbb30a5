"""The directory of units (处置单位名录): departments, enterprises, 街道 and 社区 that receive cases.

One row per county a unit serves, so every read is limited by county in SQL. A case is dispatched
only to an active unit of its own county in the directory, so a mistyped or invented name never
becomes a unit that no account handles, and no county's cases reach another county's unit. Every
current grid's responsible unit is in the directory (the trigger `adopt_unit` on `grids`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from layers.errors import (
    AccountError,
    FeatureNotFound,
    InvalidFeature,
    PreconditionFailed,
    StateConflict,
)
from layers.places import counties as county_rows
from layers.registry import GRIDS
from layers.store.versions import is_current

MAX_NAME = 200
MAX_CONTACT = 100
TYPES = {
    "department": "主管部门",
    "enterprise": "企业",
    "street": "街道",
    "community": "社区",
    "other": "其他",
}
# GB 32100-2015: 31 characters (no I, O, Z, S, V), weights 3^i mod 31 over the first 17.
CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
CREDIT_FORMAT = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")
PHONE_FORMAT = re.compile(r"^[0-9+\-() ]{3,30}$")

KNOWN = "SELECT u.adcode, u.name FROM units AS u WHERE u.active"
COLUMNS = """
    u.id, u.adcode, c.name AS county, u.name, u.credit_code, u.type, u.contact_person,
    u.contact_phone, u.active, u.version,
    (u.added_by LIKE 'grid %' OR u.added_by = 'migration 0019') AS adopted,
    EXISTS (SELECT 1 FROM grids AS g WHERE g.adcode = u.adcode AND g.responsible_unit = u.name
            AND {current}) AS on_grid,
    array(SELECT DISTINCT o.adcode FROM units AS o
          WHERE (o.name = u.name OR o.credit_code = u.credit_code)
            AND (CAST(:counties AS text[]) IS NULL OR o.adcode = ANY(:counties))
          ORDER BY 1) AS serves
""".format(current=is_current(GRIDS, "g"))


@dataclass(frozen=True)
class Unit:
    """A unit of the directory in one county, and the counties (of those read) it serves."""

    id: int
    adcode: str
    county: str
    name: str
    credit_code: str | None = None
    type: str = "department"
    contact_person: str | None = None
    contact_phone: str | None = None
    active: bool = True
    version: int = 1
    sources: tuple[str, ...] = ("declared",)
    counties: tuple[str, ...] = field(default_factory=tuple)

    @property
    def etag(self) -> str:
        """The version a change naming it in If-Match expects."""
        return f"unit-{self.id}-{self.version}"

    def public(self) -> dict[str, Any]:
        """The unit as the API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "adcode": self.adcode,
            "county": self.county,
            "credit_code": self.credit_code,
            "type": self.type,
            "type_label": TYPES[self.type],
            "contact_person": self.contact_person,
            "contact_phone": self.contact_phone,
            "active": self.active,
            "counties": list(self.counties),
            "sources": list(self.sources),
        }


def credit_check_digit(first17: str) -> str:
    """The 18th character of a 统一社会信用代码 whose first 17 are given (GB 32100-2015)."""
    total = sum(CREDIT_CHARS.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARS[(31 - total % 31) % 31]


def check_credit_code(raw: str) -> str:
    """A 统一社会信用代码 in capitals, refused when not 18 characters of the code's alphabet or
    when its check digit is wrong."""
    code = raw.strip().upper()
    if not CREDIT_FORMAT.match(code):
        raise InvalidFeature(
            f"{raw!r} is not a unified social credit code: 18 characters, digits and capitals "
            "without I, O, Z, S, V, the 3rd to 8th an area code.",
            f"“{raw}”不是统一社会信用代码：应为 18 位，由数字和除 I、O、Z、S、V 以外的大写字母组成，"
            "第 3 至 8 位为行政区划代码。",
            code="bad_credit_code",
        )
    expected = credit_check_digit(code[:17])
    if code[17] != expected:
        raise InvalidFeature(
            f"The check digit of {code} is wrong (GB 32100-2015 gives {expected}): the code is "
            "mistyped.",
            f"统一社会信用代码 {code} 的校验码有误（按 GB 32100-2015 应为 {expected}），请核对。",
            code="bad_credit_code_check",
        )
    return code


def _unit(row: Any) -> Unit:
    # `declared`: an admin added it; `grid`: a current grid names it (adopted from a grid: only
    # that, while one does)
    sources = (() if row.adopted else ("declared",)) + (("grid",) if row.on_grid else ())
    return Unit(
        row.id,
        row.adcode,
        row.county,
        row.name,
        row.credit_code,
        row.type,
        row.contact_person,
        row.contact_phone,
        row.active,
        row.version,
        sources or ("declared",),
        tuple(row.serves),
    )


def list_units(
    conn: Connection,
    counties: tuple[str, ...] | None = None,
    unit_type: str | None = None,
    active: bool | None = None,
) -> list[Unit]:
    """The directory's units of `counties` (None: of every county), by county and name."""
    rows = conn.execute(
        text(f"""
        SELECT {COLUMNS} FROM units AS u JOIN counties AS c ON c.adcode = u.adcode
        WHERE (CAST(:counties AS text[]) IS NULL OR u.adcode = ANY(:counties))
          AND (CAST(:type AS text) IS NULL OR u.type = :type)
          AND (CAST(:active AS boolean) IS NULL OR u.active = :active)
        ORDER BY u.adcode, u.name
    """),
        {
            "counties": list(counties) if counties is not None else None,
            "type": unit_type,
            "active": active,
        },
    ).all()
    return [_unit(r) for r in rows]


def get(conn: Connection, unit_id: int, counties: tuple[str, ...] | None = None) -> Unit:
    """One unit of `counties` by id (another county's looks absent)."""
    row = conn.execute(
        text(f"""
        SELECT {COLUMNS} FROM units AS u JOIN counties AS c ON c.adcode = u.adcode
        WHERE u.id = :id AND (CAST(:counties AS text[]) IS NULL OR u.adcode = ANY(:counties))
    """),
        {"id": unit_id, "counties": list(counties) if counties is not None else None},
    ).first()
    if row is None:
        raise FeatureNotFound(
            f"No unit {unit_id} in your counties.",
            f"您所辖县级行政区中没有编号为 {unit_id} 的单位。",
            code="unit_not_found",
        )
    return _unit(row)


def find(conn: Connection, name_or_credit_code: str, adcode: str) -> Unit | None:
    """The unit of county `adcode` with this name or credit code, if any."""
    key = name_or_credit_code.strip()
    row = conn.execute(
        text(f"""
        SELECT {COLUMNS} FROM units AS u JOIN counties AS c ON c.adcode = u.adcode
        WHERE u.adcode = :adcode AND (u.name = :key OR u.credit_code = upper(:key))
        ORDER BY u.name = :key DESC LIMIT 1
    """),
        {"adcode": adcode, "key": key, "counties": [adcode]},
    ).first()
    return _unit(row) if row is not None else None


def require(conn: Connection, name_or_credit_code: str, adcode: str) -> Unit:
    """The active unit of county `adcode` named so or with this credit code; refused otherwise
    (`unit_not_in_county` when only another county has it, else `unknown_unit`; `unit_inactive`)."""
    unit = find(conn, name_or_credit_code, adcode)
    if unit is None:
        check_known(conn, name_or_credit_code, adcode)
        raise AssertionError("check_known refuses what find did not find")  # pragma: no cover
    if not unit.active:
        raise _inactive(unit.name, adcode)
    return unit


def counties_of(conn: Connection, name: str) -> list[str]:
    """The counties in which cases may be dispatched to `name`."""
    return list(
        conn.execute(
            text(f"SELECT DISTINCT k.adcode FROM ({KNOWN}) AS k WHERE k.name = :name ORDER BY 1"),
            {"name": name},
        ).scalars()
    )


def is_known(conn: Connection, name: str, adcode: str) -> bool:
    """Whether cases of the county `adcode` may be dispatched to `name`."""
    return adcode in counties_of(conn, name)


def _inactive(name: str, adcode: str) -> StateConflict:
    return StateConflict(
        f"{name!r} is no longer an active unit of {adcode}: choose another or reactivate it.",
        f"“{name}”在县级行政区 {adcode} 已停用：请选择其他单位，或由管理员重新启用。",
        code="unit_inactive",
    )


def check_known(conn: Connection, name: str, adcode: str) -> None:
    """Refuse a unit that is not an active unit of the case's county in the directory."""
    found = counties_of(conn, name)
    if adcode in found:
        return
    stopped = conn.execute(
        text("SELECT 1 FROM units WHERE adcode = :a AND name = :n AND NOT active"),
        {"a": adcode, "n": name},
    ).first()
    if stopped is not None:
        raise _inactive(name, adcode)
    if found:
        raise StateConflict(
            f"{name!r} is a handling unit of another county, not of {adcode}: dispatch a case "
            "only to a unit of its own county.",
            f"“{name}”不是本案件所在县级行政区（{adcode}）的处置单位：案件只能派遣给本县级行政区的"
            "处置单位。",
            code="unit_not_in_county",
        )
    raise InvalidFeature(
        f"{name!r} is not a handling unit in the directory of units of {adcode}: add it first "
        "(citygrid units add, POST /units).",
        f"“{name}”不是县级行政区 {adcode} 单位名录中的处置单位：请由管理员先登记"
        "（citygrid units add 或 POST /units）。",
        code="unknown_unit",
    )


def clean_name(name: str) -> str:
    """A unit's name without surrounding spaces, refused when empty, too long or unprintable."""
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or not clean.isprintable():
        raise AccountError(
            f"A unit's name has 1 to {MAX_NAME} printable characters.",
            f"处置单位名称须为 1 至 {MAX_NAME} 个可打印字符。",
            code="bad_unit_name",
        )
    return clean


def clean_type(value: str) -> str:
    """A unit type from its code or its Chinese label."""
    given = value.strip()
    for code, label in TYPES.items():
        if given in (code, label):
            return code
    raise InvalidFeature(
        f"Unknown unit type {value!r}: one of {', '.join(TYPES)}.",
        f"未知的单位类型“{value}”：应为{'、'.join(TYPES.values())}之一。",
        code="bad_unit_type",
    )


def _clean_contact(value: str | None, phone: bool = False) -> str | None:
    given = (value or "").strip()
    if not given:
        return None
    if (
        len(given) > MAX_CONTACT
        or not given.isprintable()
        or (phone and not PHONE_FORMAT.match(given))
    ):
        raise InvalidFeature(
            f"{given!r} is not a {'phone number' if phone else 'contact name'}.",
            f"“{given}”不是有效的{'联系电话' if phone else '联系人'}。",
            code="bad_unit_contact",
        )
    return given


@dataclass(frozen=True)
class NewUnit:
    """What a directory entry is declared with."""

    name: str
    type: str = "department"
    credit_code: str | None = None
    contact_person: str | None = None
    contact_phone: str | None = None

    def cleaned(self) -> NewUnit:
        """The same entry checked and normalised (each refusal with its own code)."""
        return NewUnit(
            clean_name(self.name),
            clean_type(self.type),
            check_credit_code(self.credit_code) if self.credit_code else None,
            _clean_contact(self.contact_person),
            _clean_contact(self.contact_phone, phone=True),
        )


def _audit(conn: Connection, actor: str, action: str, unit: Unit, before: Unit | None) -> None:
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, feature_id, adcode, before, after)
        VALUES (:actor, :action, 'units', :id, CAST(:adcode AS text),
                CAST(:before AS jsonb), CAST(:after AS jsonb))
    """),
        {
            "actor": actor,
            "action": action,
            "id": unit.id,
            "adcode": unit.adcode,
            "before": _json(before),
            "after": _json(unit),
        },
    )


def _json(unit: Unit | None) -> str | None:
    if unit is None:
        return None
    doc = unit.public()
    for derived in ("county", "counties", "sources", "type_label"):
        doc.pop(derived)
    return json.dumps(doc, ensure_ascii=False)


def _refuse_taken(conn: Connection, entry: NewUnit, adcode: str, other_than: int | None) -> None:
    if entry.credit_code is None:
        return
    holder = conn.execute(
        text("""
        SELECT name FROM units WHERE adcode = :a AND credit_code = :c
          AND (CAST(:id AS bigint) IS NULL OR id <> :id)
    """),
        {"a": adcode, "c": entry.credit_code, "id": other_than},
    ).scalar()
    if holder is not None:
        raise StateConflict(
            f"The credit code {entry.credit_code} is already {holder!r}'s in {adcode}.",
            f"统一社会信用代码 {entry.credit_code} 在县级行政区 {adcode} 已属于“{holder}”。",
            code="credit_code_taken",
        )


def add(conn: Connection, name: str | NewUnit, adcode: str, actor: str) -> Unit:
    """Add a unit to a stored county's directory (audited); refused when its name or credit code
    is taken there or any field is malformed."""
    entry = (name if isinstance(name, NewUnit) else NewUnit(name)).cleaned()
    county_rows.get(conn, adcode)
    _refuse_taken(conn, entry, adcode, None)
    added = conn.execute(
        text("""
        INSERT INTO units (adcode, name, type, credit_code, contact_person, contact_phone, added_by)
        VALUES (:adcode, :name, :type, :credit_code, :contact_person, :contact_phone, :actor)
        ON CONFLICT (adcode, name) DO NOTHING RETURNING id
    """),
        {
            "adcode": adcode,
            "name": entry.name,
            "type": entry.type,
            "credit_code": entry.credit_code,
            "contact_person": entry.contact_person,
            "contact_phone": entry.contact_phone,
            "actor": actor,
        },
    ).scalar()
    if added is None:
        raise StateConflict(
            f"The unit {entry.name!r} is already declared in {adcode}.",
            f"处置单位“{entry.name}”已在县级行政区 {adcode} 登记。",
            code="unit_exists",
        )
    unit = get(conn, int(added))
    _audit(conn, actor, "create", unit, None)
    return unit


EDITABLE = ("type", "credit_code", "contact_person", "contact_phone", "active")


def update(
    conn: Connection,
    unit_id: int,
    changes: dict[str, Any],
    actor: str,
    counties: tuple[str, ...] | None = None,
    if_match: str | None = None,
) -> Unit:
    """Change a unit's type, credit code, contact or active flag (audited); its name and county
    stay. A stale If-Match is refused."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidFeature(
            f"Only {', '.join(EDITABLE)} of a unit change: not {', '.join(sorted(unknown))}.",
            f"单位只能修改类型、信用代码、联系人、联系电话和启用状态，不能修改："
            f"{'、'.join(sorted(unknown))}。",
            code="unknown_property",
        )
    before = get(conn, unit_id, counties)
    if if_match is not None and if_match.strip().strip('"') != before.etag:
        raise PreconditionFailed(
            "The unit changed since it was read: read it again.",
            "该单位在读取后已被修改，请重新读取。",
            code="precondition_failed",
        )
    merged = {f: getattr(before, f) for f in EDITABLE} | changes
    if not isinstance(merged["active"], bool):
        raise InvalidFeature("active is true or false.", "启用状态须为真或假。", code="bad_active")
    entry = NewUnit(
        before.name,
        merged["type"] or "",
        merged["credit_code"],
        merged["contact_person"],
        merged["contact_phone"],
    ).cleaned()
    _refuse_taken(conn, entry, before.adcode, unit_id)
    conn.execute(
        text("""
        UPDATE units SET type = :type, credit_code = :credit_code,
               contact_person = :contact_person, contact_phone = :contact_phone,
               active = :active, version = version + 1
        WHERE id = :id AND version = :version
    """),
        {
            "type": entry.type,
            "credit_code": entry.credit_code,
            "contact_person": entry.contact_person,
            "contact_phone": entry.contact_phone,
            "active": merged["active"],
            "id": unit_id,
            "version": before.version,
        },
    )
    after = get(conn, unit_id, counties)
    _audit(conn, actor, "update", after, before)
    return after
