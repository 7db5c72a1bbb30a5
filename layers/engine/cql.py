"""CQL2 filters (text and JSON, OGC API - Features Part 3) translated to SQL with bound values.

pygeofilter parses; this module checks every property against the layer's registry fields and
every literal against the field's type, and writes SQL where values only ever appear as bound
parameters. Anything it cannot translate is a clear `BadQuery`, never a server error.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import Any

from lark import Lark
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import Evaluator, handle
from pygeofilter.parsers.cql2_json import parse as parse_json

from layers.engine import fieldvalues, jsonin
from layers.engine.crs import Crs, geometry_in
from layers.errors import BadQuery
from layers.registry import Field, FieldType, Layer

GEOMETRY_NAMES = {"geom", "geometry"}
_TEMPORAL_FUNCTION = re.compile(r"\b(T_[A-Z]+)\s*\(", re.IGNORECASE)
MAX_FILTER_CHARS = 20_000
TEXT_LANGS = ("cql2-text", "cql-text")  # cql-text: the draft's name, which GDAL 3.6 sends
MAX_FILTER_DEPTH = 32  # operators nested in one another; a run of ANDs (or of ORs) counts once
# CQL2 lets NOT negate any condition (NOT (NOT (a = 1)), NOT (a = 1 AND b = 2)); the shipped
# grammar only negates a single predicate, so its rule is widened here.
_NOT_ANY_CONDITION = """
%override ?condition_1: predicate
            | "NOT"i condition_1 -> not_
            | "(" condition ")"
"""


@dataclass(frozen=True)
class _Column:
    sql: str
    field: Field | None  # None: the geometry


@dataclass(frozen=True)
class _Literal:
    value: Any


@dataclass(frozen=True)
class _Box:
    minx: float
    miny: float
    maxx: float
    maxy: float


def _bad(en: str, zh: str) -> BadQuery:
    return BadQuery(f"Invalid filter: {en}", f"过滤条件无效：{zh}", code="invalid_filter")


def _infix_temporal(text: str) -> str:
    """Rewrite standard `T_OP(a, b)` into the `a T_OP b` form the parser reads."""
    while match := _TEMPORAL_FUNCTION.search(text):
        depth, split, end = 0, None, None
        for i in range(match.end(), len(text)):
            ch = text[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    end = i
                    break
                depth -= 1
            elif ch == "," and depth == 0 and split is None:
                split = i
        if split is None or end is None:
            raise _bad(f"{match.group(1)} needs two arguments", f"{match.group(1)} 需要两个参数")
        lhs, rhs = text[match.end() : split].strip(), text[split + 1 : end].strip()
        text = f"{text[: match.start()]}({lhs} {match.group(1).upper()} {rhs}){text[end + 1 :]}"
    return text


def _between_as_parsed(node: Any) -> Any:
    """CQL2 JSON writes BETWEEN with three args; the parser reads the older [prop, [lo, hi]]."""
    if isinstance(node, dict):
        node = {k: _between_as_parsed(v) for k, v in node.items()}
        args = node.get("args")
        if node.get("op") == "between" and isinstance(args, list) and len(args) == 3:
            node["args"] = [args[0], [args[1], args[2]]]
        return node
    if isinstance(node, list):
        return [_between_as_parsed(v) for v in node]
    return node


@cache
def _text_parser() -> Lark:
    # Importing this module builds pygeofilter's own parser, which is slow and not used here.
    from pygeofilter.parsers.cql2_text import parser as text_parser

    grammar = files("pygeofilter.parsers.cql2_text").joinpath("grammar.lark").read_text()
    return Lark(
        grammar + _NOT_ANY_CONDITION,
        parser="lalr",
        maybe_placeholders=False,
        transformer=text_parser.CQLTransformer(),
        import_paths=[os.path.dirname(os.path.dirname(text_parser.__file__))],
    )


def parse(filter_text: str, lang: str) -> ast.Node:
    """Parse a `filter` in cql2-text or cql2-json, refusing it above the stated size and depth."""
    if len(filter_text) > MAX_FILTER_CHARS:
        raise _bad(
            f"it is longer than {MAX_FILTER_CHARS:,} characters",
            f"长度超过 {MAX_FILTER_CHARS:,} 个字符",
        )
    try:
        if lang == "cql2-json":
            node = parse_json(_between_as_parsed(jsonin.loads(filter_text)))
        elif lang in TEXT_LANGS:
            node = _text_parser().parse(_infix_temporal(filter_text))
        else:
            raise _bad(
                f"filter-lang must be cql2-text, cql-text or cql2-json, not {lang!r}",
                f"filter-lang 只能是 cql2-text、cql-text 或 cql2-json，而不是 {lang!r}",
            )
    except BadQuery:
        raise
    except jsonin.JsonRefused as refused:
        raise _bad(
            f"cannot parse it as {lang} ({refused.message_en})",
            f"无法按 {lang} 解析（{refused.message_zh}）",
        ) from None
    except RecursionError:
        raise _too_deep() from None
    except Exception as exc:  # the parsers raise many kinds; all mean "not a filter"
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise _bad(
            f"cannot parse it as {lang} ({first})", f"无法按 {lang} 解析（{first}）"
        ) from exc
    if _depth(node) > MAX_FILTER_DEPTH:
        raise _too_deep()
    return node


def _too_deep() -> BadQuery:
    return _bad(
        f"operators are nested more than {MAX_FILTER_DEPTH} deep",
        f"运算嵌套超过 {MAX_FILTER_DEPTH} 层",
    )


def _sub_nodes(node: Any) -> list[Any]:
    subs = node.get_sub_nodes() if isinstance(node, ast.Node) else []
    return subs if isinstance(subs, list) else [subs]


def _depth(root: ast.Node) -> int:
    """How deep operators nest, a run of the same AND or OR counted once, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_FILTER_DEPTH:
            break
        for sub in _sub_nodes(node):
            same_run = isinstance(sub, ast.Combination) and type(sub) is type(node)
            stack.append((sub, level if same_run else level + 1))
    return deepest


def _operands(node: ast.Combination) -> Iterator[Any]:
    """The operands of a run of the same AND or OR, left to right, without recursion."""
    stack: list[Any] = [node]
    while stack:
        current = stack.pop()
        if type(current) is type(node):
            stack.extend(reversed(_sub_nodes(current)))
        else:
            yield current


class SqlFilter(Evaluator):
    """Evaluates a pygeofilter AST into a SQL condition on table alias `t`."""

    def __init__(self, layer: Layer, filter_crs: Crs, params: dict[str, Any]) -> None:
        self.layer = layer
        self.filter_crs = filter_crs
        self.params = params

    def _bind(self, value: Any) -> str:
        name = f"cql_{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _value(self, column: _Column, literal: Any) -> str:
        """Bind a literal compared with `column`, checked against the field's type."""
        if isinstance(literal, _Column):
            return literal.sql
        if not isinstance(literal, _Literal) or column.field is None:
            raise _bad("a comparison needs a property and a value", "比较运算需要一个属性和一个值")
        return self._bind(fieldvalues.parse(column.field, literal.value, fieldvalues.CQL))

    def evaluate(self, node: Any, adopt_result: bool = True) -> Any:
        """Evaluate `node`; a long run of ANDs or ORs is joined flat, not recursed into."""
        if isinstance(node, ast.Combination):
            parts = [self.adopt_result(self.evaluate(sub, False)) for sub in _operands(node)]
            return "(" + f" {node.op.value} ".join(parts) + ")"
        return super().evaluate(node, adopt_result)

    def adopt(self, node: Any, *sub_args: Any) -> Any:
        """Any node or literal without a handler: refused with its name."""
        raise _bad(f"{type(node).__name__} is not supported", f"不支持 {type(node).__name__}")

    def adopt_result(self, result: Any) -> Any:
        """The whole filter must be a condition."""
        if not isinstance(result, str):
            raise _bad("the filter is not a condition", "过滤条件不是一个判断式")
        return result

    @handle(ast.Attribute)
    def attribute(self, node: ast.Attribute) -> _Column:
        if node.name in GEOMETRY_NAMES and self.layer.geometry is not None:
            return _Column("t.geom", None)
        try:
            f = self.layer.field(node.name)
        except KeyError:
            raise BadQuery(
                f"Invalid filter: {self.layer.id} has no property {node.name!r} (see /collections/{self.layer.id}/queryables).",
                f"过滤条件无效：图层 {self.layer.id} 没有属性 {node.name!r}（见 /collections/{self.layer.id}/queryables）。",
                code="invalid_filter",
            ) from None
        return _Column(f't."{f.name}"', f)

    @handle(str, int, float, bool, datetime, date, values.Geometry, values.Interval)
    def literal(self, node: Any, *_evaluated_parts: Any) -> _Literal:
        return _Literal(node)

    @handle(values.Envelope)
    def envelope(self, node: values.Envelope) -> _Literal:
        # cql2-json's {"bbox": [minx, miny, maxx, maxy]} arrives as Envelope(*bbox): the fields
        # hold the list in order, whatever their names say.
        return _Literal(_box([node.x1, node.x2, node.y1, node.y2]))

    @handle(ast.Function)
    def function(self, node: ast.Function, *_args: Any) -> _Literal:
        if node.name.lower() == "bbox":
            return _Literal(_box(node.arguments))
        raise _bad(f"the function {node.name} is not supported", f"不支持函数 {node.name}")

    @handle(ast.Not)
    def not_(self, node: ast.Not, sub: str) -> str:
        return f"NOT ({self.adopt_result(sub)})"

    @handle(ast.Comparison, subclasses=True)
    def comparison(self, node: ast.Comparison, lhs: Any, rhs: Any) -> str:
        column, other = _column_first(lhs, rhs)
        op = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[node.op.value]
        if column is not lhs:
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        return f"{column.sql} {op} {self._value(column, other)}"

    @handle(ast.Between)
    def between(self, node: ast.Between, lhs: Any, low: Any, high: Any) -> str:
        column = _require_column(lhs)
        neg = "NOT " if node.not_ else ""
        return (
            f"{column.sql} {neg}BETWEEN {self._value(column, low)} AND {self._value(column, high)}"
        )

    @handle(ast.Like)
    def like(self, node: ast.Like, lhs: Any) -> str:
        column = _require_column(lhs)
        if column.field is None or column.field.type is not FieldType.TEXT:
            raise _bad("LIKE works on text properties only", "LIKE 只能用于文本属性")
        op = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        return f"{column.sql} {op} {self._bind(str(node.pattern))}"

    @handle(ast.In)
    def in_(self, node: ast.In, lhs: Any, *items: Any) -> str:
        column = _require_column(lhs)
        placeholders = ", ".join(self._value(column, item) for item in items) or "NULL"
        return f"{column.sql} {'NOT ' if node.not_ else ''}IN ({placeholders})"

    @handle(ast.IsNull)
    def is_null(self, node: ast.IsNull, lhs: Any) -> str:
        return f"{_require_column(lhs).sql} IS {'NOT ' if node.not_ else ''}NULL"

    @handle(ast.GeometryIntersects, ast.GeometryWithin, ast.GeometryContains, ast.GeometryDisjoint)
    def spatial(self, node: ast.SpatialComparisonPredicate, lhs: Any, rhs: Any) -> str:
        column, other = _column_first(lhs, rhs)
        if column.field is not None:
            raise _bad("spatial operators compare the geometry", "空间运算只能用于几何属性")
        shape = self._geometry(other)
        function = {
            ast.GeometryIntersects: "ST_Intersects",
            ast.GeometryWithin: "ST_Within",
            ast.GeometryContains: "ST_Contains",
            ast.GeometryDisjoint: "ST_Disjoint",
        }[type(node)]
        args = (column.sql, shape) if column is lhs else (shape, column.sql)
        return f"{function}({args[0]}, {args[1]})"

    def _geometry(self, literal: Any) -> str:
        if isinstance(literal, _Literal) and isinstance(literal.value, _Box):
            b = literal.value
            self._inside_domain((b.minx, b.miny, b.maxx, b.maxy))
            box = f"ST_MakeEnvelope({self._bind(b.minx)}, {self._bind(b.miny)}, {self._bind(b.maxx)}, {self._bind(b.maxy)})"
            return geometry_in(box, self.filter_crs)
        if isinstance(literal, _Literal) and isinstance(literal.value, values.Geometry):
            geojson = json.dumps(literal.value.geometry)
            self._inside_domain(_bounds(literal.value.geometry))
            return geometry_in(f"ST_GeomFromGeoJSON({self._bind(geojson)})", self.filter_crs)
        raise _bad("a spatial operator needs a geometry", "空间运算需要一个几何值")

    def _inside_domain(self, bounds: tuple[float, float, float, float]) -> None:
        if not self.filter_crs.contains(bounds):
            a0, b0, a1, b1 = self.filter_crs.domain
            raise _bad(
                f"a geometry lies outside {a0:g},{b0:g},{a1:g},{b1:g}, where {self.filter_crs.uri} is defined",
                f"几何超出坐标系 {self.filter_crs.uri} 的有效范围 {a0:g},{b0:g},{a1:g},{b1:g}",
            )

    @handle(ast.TemporalPredicate, subclasses=True)
    def temporal(self, node: ast.TemporalPredicate, lhs: Any, rhs: Any) -> str:
        column, other = _column_first(lhs, rhs)
        if (
            column is not lhs
            or column.field is None
            or column.field.type not in (FieldType.DATE, FieldType.TIMESTAMP)
        ):
            raise _bad(
                "temporal operators compare a date or time property with a value",
                "时间运算需要日期或时间属性与一个值",
            )
        value = other.value if isinstance(other, _Literal) else None
        start, end = (
            (value.start, value.end) if isinstance(value, values.Interval) else (value, value)
        )
        lo = (
            "NULL"
            if start in (None, "..")
            else self._bind(fieldvalues.parse(column.field, start, fieldvalues.CQL))
        )
        hi = (
            "NULL"
            if end in (None, "..")
            else self._bind(fieldvalues.parse(column.field, end, fieldvalues.CQL))
        )
        sql = {
            ast.TimeAfter: f"{column.sql} > {hi}",
            ast.TimeBefore: f"{column.sql} < {lo}",
            ast.TimeEquals: f"{column.sql} = {lo}",
            ast.TimeDisjoint: f"NOT ({column.sql} >= coalesce({lo}, '-infinity') AND {column.sql} <= coalesce({hi}, 'infinity'))",
        }.get(type(node))
        if (
            sql is None
        ):  # intersects / during / overlaps on an instant property: inside the interval
            sql = f"({column.sql} >= coalesce({lo}, '-infinity') AND {column.sql} <= coalesce({hi}, 'infinity'))"
        return sql


def _box(numbers: Any) -> _Box:
    try:
        minx, miny, maxx, maxy = (float(n) for n in numbers)
    except (TypeError, ValueError):
        raise _bad("BBOX needs four numbers", "BBOX 需要四个数") from None
    if not (minx <= maxx and miny <= maxy):
        raise _bad("BBOX minimum above maximum", "BBOX 最小值大于最大值")
    return _Box(minx, miny, maxx, maxy)


def _bounds(geometry: Any) -> tuple[float, float, float, float]:
    """The bounds of a GeoJSON geometry's coordinates, in their own order."""
    xs: list[float] = []
    ys: list[float] = []
    stack = [geometry]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend((node.get("coordinates"), node.get("geometries")))
        elif (
            isinstance(node, list | tuple)
            and len(node) >= 2
            and all(isinstance(v, int | float) for v in node)
        ):
            xs.append(float(node[0]))
            ys.append(float(node[1]))
        elif isinstance(node, list | tuple):
            stack.extend(node)
    if not xs:
        raise _bad("a geometry without coordinates", "几何没有坐标")
    return min(xs), min(ys), max(xs), max(ys)


def _require_column(arg: Any) -> _Column:
    if not isinstance(arg, _Column):
        raise _bad("the left side must be a property", "左侧必须是属性")
    return arg


def _column_first(lhs: Any, rhs: Any) -> tuple[_Column, Any]:
    if isinstance(lhs, _Column):
        return lhs, rhs
    if isinstance(rhs, _Column):
        return rhs, lhs
    raise _bad("an operator needs a property", "运算需要一个属性")


def to_sql(
    layer: Layer, filter_text: str, lang: str, filter_crs: Crs, params: dict[str, Any]
) -> str:
    """A SQL condition on alias `t` for `filter_text`, its values added to `params`."""
    node = parse(filter_text, lang)
    result: str = SqlFilter(layer, filter_crs, params).evaluate(node)
    return result
