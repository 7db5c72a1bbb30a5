"""Request dependencies, each resolving one thing, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from layers.errors import BadQuery
from layers.features import BBox, get_layer
from layers.registry import Layer


def get_engine(request: Request) -> Engine:
    """The engine owned by the application."""
    engine: Engine = request.app.state.engine
    return engine


def get_connection(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Connection]:
    """A connection for the request, returned to the pool afterwards."""
    with engine.connect() as conn:
        yield conn


EngineDep = Annotated[Engine, Depends(get_engine)]
ConnectionDep = Annotated[Connection, Depends(get_connection)]


def get_layer_dep(collection_id: str) -> Layer:
    """The layer named by the path."""
    return get_layer(collection_id)


def parse_bbox(bbox: str | None = None) -> BBox | None:
    """`bbox=west,south,east,north` in longitude/latitude degrees."""
    if bbox is None:
        return None
    try:
        west, south, east, north = (float(v) for v in bbox.split(","))
    except ValueError:
        raise BadQuery(
            "bbox must be four numbers: west,south,east,north.",
            "bbox 必须是四个数：西,南,东,北。",
        ) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise BadQuery(
            f"bbox {bbox} is not a box in longitude/latitude (west < east, south < north).",
            f"bbox {bbox} 不是有效的经纬度范围（需 西 < 东，南 < 北）。",
        )
    return BBox(west, south, east, north)


LayerDep = Annotated[Layer, Depends(get_layer_dep)]
BBoxDep = Annotated[BBox | None, Depends(parse_bbox)]
