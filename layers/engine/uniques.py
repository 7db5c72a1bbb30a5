"""Values no two rows of a county share (`unique_in_county`: a camera's device ID), checked
before a write so a taken value is refused with its reason instead of failing in the database.

A layer's coded ID (`id_scheme`) is checked with its own rules (layers/engine/idcodes.py) and
derived fields are written by their own operations, so both are left out here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from layers.errors import StateConflict
from layers.registry import Layer
from layers.store.versions import is_current


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def checked_fields(layer: Layer) -> list[str]:
    """The fields of `unique_in_county` a plain write or an import sets."""
    coded = layer.id_scheme.field if layer.id_scheme is not None else None
    return [n for n in layer.unique_in_county if n != coded and not layer.field(n).derived]


def _held_sql(layer: Layer, name: str) -> str:
    current = f" AND {is_current(layer)}" if layer.versioned is not None else ""
    return (
        f"SELECT adcode, {_q(name)}, id FROM {_q(layer.id)} "
        f"WHERE adcode = ANY(:adcodes) AND {_q(name)} = ANY(:values){current}"
    )


def taken(value: Any, name: str, layer: Layer, adcode: str) -> StateConflict:
    """The refusal of a value another row of the county holds."""
    label = layer.field(name).label_zh
    return StateConflict(
        f"{name}: another row of {layer.id} in {adcode} already has {value!r}.",
        f"{label}（{name}）：县级行政区 {adcode} 的{layer.title_zh}中已有 {value!r}。",
        code="value_taken",
    )


def check_write(
    conn: Connection, layer: Layer, values: dict[str, Any], adcode: str | None, fid: int | None
) -> None:
    """Refuse a written value of a unique field that another row of the county holds."""
    if adcode is None:
        return
    for name in checked_fields(layer):
        value = values.get(name)
        if value is None:
            continue
        held = conn.execute(
            text(_held_sql(layer, name)), {"adcodes": [adcode], "values": [value]}
        ).all()
        if any(row[2] != fid for row in held):
            raise taken(value, name, layer, adcode)


def row_problems(
    conn: Connection,
    layer: Layer,
    rows: list[dict[str, Any]],
    adcodes: list[str | None],
    stored: list[int | None],
    matched_by: str | None,
) -> list[tuple[int, str, str, str, str]]:
    """An import's rows whose value of a unique field another row of the file or a stored row of
    the county (other than the one the row updates) holds: (row, field, value, code, message).
    The field rows were matched by (`matched_by`) is left to the matching, which reports it."""
    out = []
    for name in checked_fields(layer):
        if name == matched_by:
            continue
        asked = [
            (i, a, r[name])
            for i, (r, a) in enumerate(zip(rows, adcodes, strict=True))
            if a is not None and r.get(name) is not None
        ]
        if not asked:
            continue
        params = {"adcodes": sorted({a for _, a, _ in asked}), "values": [v for _, _, v in asked]}
        held: dict[tuple[str, Any], set[int]] = {}
        for adcode, value, fid in conn.execute(text(_held_sql(layer, name)), params):
            held.setdefault((adcode, value), set()).add(int(fid))
        seen: set[tuple[str, Any]] = set()
        for i, adcode, value in asked:
            key = (adcode, value)
            others = held.get(key, set()) - ({stored[i]} if stored[i] is not None else set())
            if key in seen or others:
                message = taken(value, name, layer, adcode).message_zh
                out.append((i + 1, name, str(value), "value_taken", message))
            seen.add(key)
    return out
