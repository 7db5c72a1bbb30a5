"""A collection's vector tiles described for tile clients (TileJSON, GDAL's metadata.json)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.auth import ViewerDep, current_viewer
from api.deps import ConnectionDep, LayerDep
from layers.engine import features, tilejson, tiles

router = APIRouter(dependencies=[Depends(current_viewer)])
TILESET = "/collections/{collectionId}/tiles/WebMercatorQuad"


def _tileset_url(request: Request, layer_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/collections/{layer_id}/tiles/WebMercatorQuad"


@router.get(f"{TILESET}/tilejson.json", summary="TileJSON / 矢量瓦片说明")
def tilejson_document(
    layer: LayerDep, request: Request, conn: ConnectionDep, viewer: ViewerDep
) -> dict[str, Any]:
    """TileJSON 3.0 of the layer's tiles: URL template, zooms, bounds of what the viewer may read."""
    tiles.check_tiled(layer)
    extent = features.extent(conn, layer, viewer)
    return tilejson.tilejson(layer, _tileset_url(request, layer.id), extent)


@router.get(f"{TILESET}/metadata.json", summary="Tileset metadata (MBTiles) / 瓦片集元数据")
def tileset_metadata(layer: LayerDep, conn: ConnectionDep, viewer: ViewerDep) -> dict[str, Any]:
    """The same in MBTiles metadata form, which GDAL's MVT driver reads beside `{z}/{x}/{y}.pbf`."""
    tiles.check_tiled(layer)
    return tilejson.mbtiles_metadata(layer, features.extent(conn, layer, viewer))
