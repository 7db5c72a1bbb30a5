"""Imports that update: file rows matched to stored rows by `id` or by the layer's natural key,
sorted into new, changed and unchanged, and the changed ones written back.

`append` adds every row and refuses rows already stored (a re-imported export would otherwise
double the layer); `upsert` updates the matched rows that differ and adds the others; `copy`
adds every row as a new feature whatever its id (copying between databases).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause
from layers.engine.editing import assignments
from layers.registry import MAX_ROW_ID, Layer
from layers.store.versions import is_current

ID = "id"
GEOMETRY_TOLERANCE = 1e-7  # degrees, about 1 cm: what a file's coordinates keep of a stored shape


class ImportMode(StrEnum):
    """What an import does with rows that are already stored."""

    APPEND = "append"
    UPSERT = "upsert"
    COPY = "copy"


@dataclass
class Matches:
    """Which file rows match stored rows, and which of those differ from them."""

    key: str | None  # "id", the natural key's field, or None when rows are not matched
    stored: list[int | None] = field(default_factory=list)  # per file row: the stored id or None
    changed: list[bool] = field(default_factory=list)
    problems: list[tuple[int, str, str, str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many file rows are new, changed and unchanged."""
        matched = [c for s, c in zip(self.stored, self.changed, strict=True) if s is not None]
        return {
            "new": len(self.stored) - len(matched),
            "changed": sum(matched),
            "unchanged": len(matched) - sum(matched),
        }


def id_column(columns: list[str]) -> int | None:
    """The index of the file's `id` column, if it has one."""
    lowered = [c.strip().lower() for c in columns]
    return lowered.index(ID) if ID in lowered else None


def _ids(values: Any, problems: list[tuple[int, str, str, str, str]]) -> list[int | None]:
    out: list[int | None] = []
    for r, raw in enumerate(values):
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() == "":
            out.append(None)
            continue
        try:
            number = float(raw)
            if not number.is_integer() or not 1 <= number <= MAX_ROW_ID:
                raise ValueError(raw)
            out.append(int(number))
        except (TypeError, ValueError, OverflowError):
            problems.append(
                (r + 1, ID, str(raw)[:60], "property_wrong_type", "“编号（id）”不是有效的要素编号")
            )
            out.append(None)
    return out


def match(
    conn: Connection,
    layer: Layer,
    columns: list[str],
    values: list[Any],
    rows: list[dict[str, Any]],
    geoms: list[BaseGeometry | None],
    viewer: Viewer | None = None,
) -> Matches:
    """Match file rows to stored rows the viewer may read: by the `id` column, else by the
    natural key when mapped."""
    at = id_column(columns)
    problems: list[tuple[int, str, str, str, str]] = []
    if at is not None:
        key, keys = ID, _ids(values[at], problems)
    elif layer.natural_key and any(layer.natural_key in row for row in rows):
        key = layer.natural_key
        keys = [row.get(key) for row in rows]
    else:
        return Matches(None, [None] * len(rows), [False] * len(rows))
    seen: dict[Any, int] = {}
    for r, k in enumerate(keys):
        if k is not None and k in seen:
            problems.append(
                (r + 1, key, str(k), "duplicate_key", f"与第 {seen[k]} 行的“{key}”重复")
            )
        seen.setdefault(k, r + 1)
    stored, ambiguous = _stored(conn, layer, key, [k for k in seen if k is not None], viewer)
    out = Matches(key, [], [], problems)
    for r, (k, row, geom) in enumerate(zip(keys, rows, geoms, strict=True)):
        if k in ambiguous:
            problems.append(
                (r + 1, key, str(k), "key_ambiguous", f"已有多个要素的“{key}”为 {k}，无法对应")
            )
        found = stored.get(k) if k is not None else None
        out.stored.append(found[0] if found else None)
        out.changed.append(found is not None and _differs(row, geom, found[1], found[2]))
    return out


Stored = dict[Any, tuple[int, dict[str, Any], BaseGeometry | None]]


def _stored(
    conn: Connection, layer: Layer, key: str, keys: list[Any], viewer: Viewer | None
) -> tuple[Stored, set[Any]]:
    """Stored rows the viewer may read by key (id, field values, geometry; current rows only for
    a versioned key), and the keys more than one stored row has."""
    if not keys:
        return {}, set()
    names = [f.name for f in layer.fields if not f.derived]
    if layer.parent_key:
        names.append(layer.parent_key)
    geometry = "ST_AsBinary(t.geom)" if layer.geometry is not None else "NULL"
    current = ""
    if key in layer.unique_current or layer.versioned is not None:  # the versions in force
        current = f" AND {is_current(layer, 't')}"
    columns = ", ".join(f't."{n}"' for n in names)
    params: dict[str, Any] = {"keys": keys}
    visible = area_clause(layer, viewer, params)
    sql = (
        f'SELECT t.id, t."{key}", {geometry}, {columns} FROM "{layer.id}" AS t '
        f'WHERE t."{key}" = ANY(:keys){current} AND {visible}'
    )
    out: Stored = {}
    ambiguous = set()
    for row in conn.execute(text(sql), params):
        shape = shapely.from_wkb(bytes(row[2])) if row[2] is not None else None
        if row[1] in out:
            ambiguous.add(row[1])
        out[row[1]] = (int(row[0]), dict(zip(names, row[3:], strict=True)), shape)
    return out, ambiguous


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _differs(
    row: dict[str, Any],
    geom: BaseGeometry | None,
    stored: dict[str, Any],
    stored_geom: BaseGeometry | None,
) -> bool:
    if any(name in stored and not _same(value, stored[name]) for name, value in row.items()):
        return True
    if geom is None or stored_geom is None:
        return geom is not stored_geom
    a, b = shapely.normalize(geom), shapely.normalize(stored_geom)
    return not shapely.equals_exact(a, b, tolerance=GEOMETRY_TOLERANCE)


def update(
    conn: Connection, layer: Layer, rows: list[tuple[int, dict[str, Any], BaseGeometry | None]]
) -> int:
    """Write the changed values (and geometry) of each (stored id, values, geometry); the count."""
    for fid, values, geom in rows:
        params: dict[str, Any] = {"id": fid}
        sets = ", ".join(
            f'"{name}" = {value}' for name, value in assignments(values, geom, params).items()
        )
        if sets:
            conn.execute(text(f'UPDATE "{layer.id}" SET {sets} WHERE id = :id'), params)
    return len(rows)
