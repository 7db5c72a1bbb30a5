"""Coded IDs (`Layer.id_scheme`): a component's 16-digit ID of GB/T 30428.2 is its county's
code, its subclass's class and subclass, and a serial. Every write and every import row is held
to it; a row without one gets the next serial of its county and subclass.

The layers sharing a scheme (the component points, lines and areas) share a county's IDs: the
subclass's catalogue geometry says which layer holds it, serials are drawn over all of them and an
ID taken in one is taken in all. The database keeps the same rules as check constraints and a
trigger; the checks here come first so that a bad ID is refused with its reason and, in an
import, with its row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, text

from layers.errors import InvalidFeature, StateConflict
from layers.registry import LAYERS, IdScheme, Layer
from layers.store.versions import is_current

Problem = tuple[str, str, str]  # code, English, Chinese


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def problem(
    scheme: IdScheme, value: str, adcode: str | None, type_code: str | None
) -> Problem | None:
    """Why `value` is not a valid ID of a row of county `adcode` and type `type_code`, or None."""
    if not re.fullmatch(scheme.pattern, value):
        digits = 10 + scheme.serial
        return (
            "component_code_format",
            f"{value!r} is not a {digits}-digit component ID (county + class + subclass + serial)",
            f"“{value}”不是 {digits} 位部件标识码（县级代码6位 + 大类2位 + 小类2位 + 流水号）",
        )
    if adcode is not None and value[:6] != adcode:
        return (
            "component_code_county",
            f"{value!r} starts with county {value[:6]}, but the component lies in {adcode}",
            f"部件标识码“{value}”的县级代码为 {value[:6]}，而部件位于县级行政区 {adcode}",
        )
    if type_code is not None and value[6:10] != type_code[1:5]:
        return (
            "component_code_subclass",
            f"{value!r} names class and subclass {value[6:10]}, but the row's subclass is "
            f"{type_code}",
            f"部件标识码“{value}”中的大类小类为 {value[6:10]}，与小类代码 {type_code} 不一致",
        )
    return None


def siblings(layer: Layer) -> list[Layer]:
    """The layers sharing `layer`'s ID scheme (itself included), whose IDs never clash."""
    return [other for other in LAYERS.values() if other.id_scheme == layer.id_scheme]


def kinds(conn: Connection, codes: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """The kind (event or component) and catalogue geometry of each stored case category among
    `codes`."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = conn.execute(
        text("SELECT code, kind, geometry FROM case_categories WHERE code = ANY(:codes)"),
        {"codes": wanted},
    ).all()
    return {code: (kind, geometry) for code, kind, geometry in rows}


_SHAPES_ZH = {"point": "点状", "line": "线状", "area": "面状"}


def kind_problem(
    layer: Layer, type_code: str, found: tuple[str, str | None] | None
) -> Problem | None:
    """Why a stored category cannot be a row's type in this layer: not a component subclass, or
    one whose catalogue geometry puts it in another layer (a missing one is the reference's
    refusal)."""
    scheme = layer.id_scheme
    if found is None or scheme is None or layer.geometry is None:
        return None
    kind, geometry = found
    if kind != scheme.type_kind:
        return (
            "subclass_not_component",
            f"{type_code} is an {kind} category, not a component subclass",
            f"{type_code} 是事件类别，不是部件小类",
        )
    if geometry is not None and geometry != layer.geometry.shape:
        home = next(
            (o for o in siblings(layer) if o.geometry and o.geometry.shape == geometry), None
        )
        where = f" ({home.id})" if home else ""
        return (
            "subclass_wrong_geometry",
            f"subclass {type_code} is drawn as a {geometry}, so its components belong in the "
            f"{geometry} layer{where}, not in {layer.id}",
            f"小类 {type_code} 为{_SHAPES_ZH.get(geometry, geometry)}部件，应录入"
            f"{home.title_zh if home else '对应图层'}，不能录入{layer.title_zh}",
        )
    return None


def _taken_sql(layer: Layer, scheme: IdScheme) -> str:
    """Current rows of the county with a given ID in any layer of the scheme (other than `fid`
    of `layer`), as one query."""
    return " UNION ALL ".join(
        f"SELECT 1 FROM {_q(o.id)} WHERE adcode = :adcode AND {_q(scheme.field)} = :v"
        + (f" AND {is_current(o)}" if o.versioned is not None else "")
        + (" AND id IS DISTINCT FROM :fid" if o.id == layer.id else "")
        for o in siblings(layer)
    )


def names_to_codes(conn: Connection, scheme: IdScheme, rows: list[dict[str, Any]]) -> None:
    """Replace type values given by name or alias (上水井盖) with their category code, in place."""
    named = {r[scheme.type_field] for r in rows if isinstance(r.get(scheme.type_field), str)}
    named = {n for n in named if not re.fullmatch(r"[A-Z][0-9]{4}", n)}
    if not named:
        return
    found: dict[str, str] = dict(
        conn.execute(
            text("""
            SELECT c.minor_name, min(c.code) FROM case_categories AS c
            WHERE c.kind = :kind AND c.minor_name = ANY(:names) GROUP BY c.minor_name
            UNION ALL
            SELECT a.alias, min(a.category_code) FROM case_category_aliases AS a
            JOIN case_categories AS c ON c.code = a.category_code
            WHERE c.kind = :kind AND a.alias = ANY(:names) GROUP BY a.alias
        """),
            {"kind": scheme.type_kind, "names": sorted(named)},
        ).all()
    )
    for row in rows:
        value = row.get(scheme.type_field)
        if isinstance(value, str) and value in found:
            row[scheme.type_field] = found[value]


def next_serials(
    conn: Connection, layer: Layer, scheme: IdScheme, adcode: str, type_code: str, taken: set[str]
) -> Iterator[str]:
    """IDs after the highest serial stored (in any version, in any layer of the scheme) or
    `taken` for a county and type; the pair is locked until the transaction ends, so two
    writers never draw the same one."""
    prefix = adcode + type_code[1:5]
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{scheme.field}:{prefix}"}
    )
    stored = conn.execute(
        text(
            "SELECT max(c) FROM ("
            + " UNION ALL ".join(
                f"SELECT max({_q(scheme.field)}) AS c FROM {_q(o.id)} "
                f"WHERE adcode = :adcode AND {_q(scheme.field)} LIKE :prefix"
                for o in siblings(layer)
            )
            + ") AS m"
        ),
        {"adcode": adcode, "prefix": prefix + "%"},
    ).scalar()
    serial = max([int(c[10:]) for c in taken if c.startswith(prefix)] + [0])
    serial = max(serial, int(stored[10:]) if stored else 0)
    while True:
        serial += 1
        if serial >= 10**scheme.serial:
            raise StateConflict(
                f"No serial is left for {prefix}.",
                f"{prefix} 的流水号已用尽。",
                code="component_code_exhausted",
            )
        yield f"{prefix}{serial:0{scheme.serial}d}"


def check_write(
    conn: Connection, layer: Layer, row: dict[str, Any], adcode: str, fid: int | None
) -> dict[str, Any]:
    """Check a written row's ID against its county and type (refusing one another current row
    of the county holds); the ID to write when it has none."""
    scheme = layer.id_scheme
    if scheme is None:
        return {}
    type_code, value = row.get(scheme.type_field), row.get(scheme.field)
    if type_code is not None:
        found = kind_problem(layer, type_code, kinds(conn, [type_code]).get(type_code))
        if found is not None:
            raise InvalidFeature(
                found[1] + ".", found[2] + "。", code=found[0], field=scheme.type_field
            )
    if value is None:
        if type_code is None:
            return {}
        return {scheme.field: next(next_serials(conn, layer, scheme, adcode, type_code, set()))}
    found = problem(scheme, value, adcode, type_code)
    if found is not None:
        raise InvalidFeature(found[1] + ".", found[2] + "。", code=found[0], field=scheme.field)
    taken = conn.execute(
        text(_taken_sql(layer, scheme)), {"adcode": adcode, "v": value, "fid": fid}
    ).first()
    if taken is not None:
        raise StateConflict(
            f"Another component of {adcode} already has the ID {value}.",
            f"县级行政区 {adcode} 已有部件使用标识码 {value}。",
            code="component_code_taken",
        )
    return {}


def row_problems(
    conn: Connection, layer: Layer, rows: list[dict[str, Any]], adcodes: list[str | None]
) -> list[tuple[int, str, str, str, str]]:
    """The ID and type problems of an import's rows: (row, field, value, code, message)."""
    scheme = layer.id_scheme
    if scheme is None:
        return []
    found = kinds(conn, (r[scheme.type_field] for r in rows if r.get(scheme.type_field)))
    out = []
    for i, (row, adcode) in enumerate(zip(rows, adcodes, strict=True)):
        type_code, value = row.get(scheme.type_field), row.get(scheme.field)
        if type_code is not None:
            wrong = kind_problem(layer, type_code, found.get(type_code))
            if wrong is not None:
                out.append((i + 1, scheme.type_field, type_code, wrong[0], wrong[2]))
                continue
        if value is not None:
            bad = problem(scheme, value, adcode, type_code if type_code in found else None)
            if bad is not None:
                out.append((i + 1, scheme.field, value, bad[0], bad[2]))
    out += _taken_elsewhere(conn, layer, rows, adcodes)
    return out


def _taken_elsewhere(
    conn: Connection, layer: Layer, rows: list[dict[str, Any]], adcodes: list[str | None]
) -> list[tuple[int, str, str, str, str]]:
    """Import rows whose ID a current row of another layer of the scheme holds."""
    scheme = layer.id_scheme
    others = [o for o in siblings(layer) if o.id != layer.id]
    asked = [
        (i, a, r[scheme.field])
        for i, (r, a) in enumerate(zip(rows, adcodes, strict=True))
        if scheme is not None and a is not None and r.get(scheme.field)
    ]
    if scheme is None or not others or not asked:
        return []
    held = {
        (a, c)
        for a, c in conn.execute(
            text(
                " UNION ".join(
                    f"SELECT adcode, {_q(scheme.field)} FROM {_q(o.id)} "
                    f"WHERE {_q(scheme.field)} = ANY(:codes)"
                    + (f" AND {is_current(o)}" if o.versioned is not None else "")
                    for o in others
                )
            ),
            {"codes": sorted({c for _, _, c in asked})},
        )
    }
    return [
        (
            i + 1,
            scheme.field,
            code,
            "component_code_taken",
            f"县级行政区 {a} 已有部件使用标识码 {code}",
        )
        for i, a, code in asked
        if (a, code) in held
    ]


def assign_missing(
    conn: Connection, layer: Layer, rows: list[dict[str, Any]], adcodes: list[str | None]
) -> int:
    """Give the import rows without an ID the next serials of their county and type; how many."""
    scheme = layer.id_scheme
    if scheme is None:
        return 0
    given = {r[scheme.field] for r in rows if r.get(scheme.field)}
    draws: dict[tuple[str, str], Iterator[str]] = {}
    assigned = 0
    for row, adcode in zip(rows, adcodes, strict=True):
        type_code = row.get(scheme.type_field)
        if row.get(scheme.field) or adcode is None or type_code is None:
            continue
        key = (adcode, type_code)
        if key not in draws:
            draws[key] = next_serials(conn, layer, scheme, adcode, type_code, given)
        row[scheme.field] = next(draws[key])
        assigned += 1
    return assigned
