"""The one field parser: which raw forms each source reads, and the same refusal from all."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from layers.engine import fieldvalues
from layers.errors import InvalidValue
from layers.registry import LAYERS, Field, FieldType

CELLS = fieldvalues.FILE.reading("Asia/Shanghai")
SOURCES = [fieldvalues.QUERY, fieldvalues.JSON, CELLS, fieldvalues.CQL]
FLAG = Field("lit", FieldType.BOOLEAN, "是否亮灯", "Lit")
PHONE = LAYERS["grids"].field("phone")
TYPE = LAYERS["billboards"].field("type")
AREA = LAYERS["billboards"].field("face_area_m2")
SPACES = LAYERS["parking_lots"].field("spaces")
GRID = LAYERS["cases"].field("grid_code")
REPORTED = LAYERS["cases"].field("reported_at")
FOUND = LAYERS["illegal_buildings"].field("found_on")


def code_of(f: Field, raw: Any, source: fieldvalues.Source) -> str:
    with pytest.raises(InvalidValue) as refused:
        fieldvalues.parse(f, raw, source)
    assert refused.value.message_zh and refused.value.message_en
    assert refused.value.details["field"] == f.name
    return refused.value.code


@pytest.mark.parametrize(
    ("f", "raw", "code"),
    [
        (AREA, "many", "property_wrong_type"),
        (SPACES, "2.5", "property_wrong_type"),
        (TYPE, "zeppelin", "property_not_in_code_list"),
        (AREA, "20000", "property_out_of_range"),
        (SPACES, "-1", "property_out_of_range"),
        (GRID, "32068", "property_bad_format"),
        (FOUND, "2024-02-30", "property_wrong_type"),
        (FLAG, "maybe", "property_wrong_type"),
    ],
)
def test_a_bad_text_value_gets_one_code_from_every_source(f: Field, raw: str, code: str) -> None:
    typed = {"20000": 20000, "-1": -1}.get(raw, raw)
    found = [code_of(f, typed if s.typed else raw, s) for s in SOURCES]
    assert found == [code] * len(SOURCES)


def test_a_required_field_without_a_value_is_missing_from_a_body_or_a_file() -> None:
    assert code_of(TYPE, None, fieldvalues.JSON) == "missing_property"
    for blank in (None, "  ", float("nan"), np.datetime64("NaT")):
        assert code_of(TYPE, blank, CELLS) == "missing_property"
    assert fieldvalues.parse(PHONE, None, fieldvalues.JSON) is None
    assert fieldvalues.parse(PHONE, " ", CELLS) is None


def test_json_values_keep_their_type() -> None:
    for f, raw in ((SPACES, "12"), (SPACES, 12.0), (AREA, True), (TYPE, 1), (FLAG, "true")):
        assert code_of(f, raw, fieldvalues.JSON) == "property_wrong_type"
    assert fieldvalues.parse(SPACES, 12, fieldvalues.JSON) == 12
    assert fieldvalues.parse(AREA, 12, fieldvalues.JSON) == 12.0
    assert code_of(REPORTED, "2024-03-01T09:00:00", fieldvalues.JSON) == "property_wrong_type"
    assert (
        "+08:00"
        in fieldvalues.parse(REPORTED, "2024-03-01T09:00:00+08:00", fieldvalues.JSON).isoformat()
    )


def test_a_query_string_is_text() -> None:
    assert fieldvalues.parse(SPACES, "12", fieldvalues.QUERY) == 12
    assert fieldvalues.parse(FLAG, "TRUE", fieldvalues.QUERY) is True
    assert fieldvalues.parse(FOUND, "2024-03-01", fieldvalues.QUERY) == date(2024, 3, 1)
    assert code_of(TYPE, "高炮", fieldvalues.QUERY) == "property_not_in_code_list"


def test_a_file_cell_may_be_a_float_a_datetime_a_word_or_a_label() -> None:
    assert fieldvalues.parse(SPACES, 12.0, CELLS) == 12
    assert fieldvalues.parse(SPACES, "12", CELLS) == 12
    assert code_of(SPACES, 12.5, CELLS) == "property_wrong_type"
    assert fieldvalues.parse(FOUND, datetime(2024, 3, 1, 8), CELLS) == date(2024, 3, 1)
    assert fieldvalues.parse(FOUND, "2024/03/01", CELLS) == date(2024, 3, 1)
    assert fieldvalues.parse(FOUND, np.datetime64("2024-03-01T00:00"), CELLS) == date(2024, 3, 1)
    naive = fieldvalues.parse(REPORTED, "2024-03-01 09:00:00", CELLS)
    assert naive.utcoffset() == timedelta(hours=8)
    assert (
        fieldvalues.parse(FLAG, "是", CELLS) is True
        and fieldvalues.parse(FLAG, "否", CELLS) is False
    )
    assert [fieldvalues.parse(TYPE, v, CELLS) for v in ("高炮", "POLE", " pole ")] == ["pole"] * 3
    assert fieldvalues.parse(PHONE, 13812345678.0, CELLS) == "13812345678"
    assert fieldvalues.parse(GRID, " 320681001001001 ", CELLS) == "320681001001001"


def test_a_filter_literal_is_compared_with_its_column() -> None:
    assert fieldvalues.parse(SPACES, 2.5, fieldvalues.CQL) == 2.5
    moment = datetime(2024, 3, 1, 9, tzinfo=UTC)
    assert fieldvalues.parse(FOUND, moment, fieldvalues.CQL) == date(2024, 3, 1)
    assert fieldvalues.parse(REPORTED, moment, fieldvalues.CQL) == moment
    assert code_of(SPACES, "12", fieldvalues.CQL) == "property_wrong_type"


def test_a_parent_link_is_a_required_row_id() -> None:
    link = fieldvalues.parent_field(LAYERS["dust_inspections"])
    assert link.name == "dust_site_id"
    assert code_of(link, 2**70, fieldvalues.JSON) == code_of(link, "0", CELLS)
    assert code_of(link, None, fieldvalues.JSON) == "missing_property"
    assert fieldvalues.parse(link, 7.0, CELLS) == 7
