"""Read citygrid with QGIS as a planner would: run by tests/test_qgis.py with Debian's
/usr/bin/python3 (python3-qgis), headless. Usage: qgis_read.py JOB.json RESULT.json.

The job names the server, the account, the layers to read (whole, or within a box) and where
to save the rendered map; the result holds what QGIS read, feature by feature."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsAuthMethodConfig,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsDataSourceUri,
    QgsFeatureRequest,
    QgsFillSymbol,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsMarkerSymbol,
    QgsPalLayerSettings,
    QgsProject,
    QgsRectangle,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
    QgsVectorTileBasicRenderer,
    QgsVectorTileBasicRendererStyle,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QSize, Qt
from qgis.PyQt.QtGui import QColor, QFont

GRANT_RESOURCE_OWNER = 2  # QgsAuthOAuth2Config::GrantFlow
CONFIG_CUSTOM = 1  # QgsAuthOAuth2Config::ConfigType
ACCESS_HEADER = 0  # QgsAuthOAuth2Config::AccessMethod: Authorization: Bearer


def oauth2_config(base: str, username: str, password: str) -> str:
    """An OAuth2 configuration of the "resource owner" grant against citygrid's token URL."""
    return json.dumps(
        {
            "accessMethod": ACCESS_HEADER,
            "apiKey": "",
            "clientId": "qgis",
            "clientSecret": "",
            "configType": CONFIG_CUSTOM,
            "customHeader": "",
            "description": "citygrid",
            "grantFlow": GRANT_RESOURCE_OWNER,
            "id": "",
            "name": "citygrid",
            "objectName": "",
            "password": password,
            "persistToken": False,
            "queryPairs": {},
            "redirectPort": 7070,
            "redirectUrl": "",
            "refreshTokenUrl": "",
            "requestTimeout": 30,
            "requestUrl": "",
            "scope": "",
            "tokenUrl": f"{base}/auth/token",
            "username": username,
            "version": 1,
        }
    )


def store_auth(base: str, username: str, password: str, master: str) -> str:
    """Store the OAuth2 configuration in the auth database; its id is the layers' authcfg."""
    manager = QgsApplication.authManager()
    if not manager.setMasterPassword(master, True):
        raise SystemExit("the master password was refused")
    config = QgsAuthMethodConfig("OAuth2")
    config.setName("citygrid")
    config.setConfigMap({"oauth2config": oauth2_config(base, username, password)})
    if not manager.storeAuthenticationConfig(config)[0]:
        raise SystemExit("the OAuth2 configuration was not stored")
    return str(config.id())


def oapif_layer(base: str, collection: str, authcfg: str, in_view: bool) -> QgsVectorLayer:
    """A collection as an OGC API - Features layer; `in_view` asks only for what is in view
    (QGIS's "only request features overlapping the view extent"), else it reads all of it."""
    uri = QgsDataSourceUri()
    uri.setParam("url", base)
    uri.setParam("typename", collection)
    uri.setParam("pageSize", "10000")
    if in_view:
        uri.setParam("restrictToRequestBBOX", "1")
    uri.setAuthConfigId(authcfg)
    layer = QgsVectorLayer(uri.uri(False), collection, "OAPIF")
    if not layer.isValid():
        # (layer.error() of an OAPIF layer that failed to open crashes QGIS 3.22)
        raise SystemExit(f"QGIS could not open {collection} at {base}")
    return layer


def plain(value: Any) -> Any:
    """A QGIS attribute value as JSON."""
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    if isinstance(value, QDateTime):
        return value.toString(Qt.ISODate)
    if isinstance(value, QDate):
        return value.toString(Qt.ISODate)
    return value


def read(layer: QgsVectorLayer, box: list[float] | None) -> dict[str, Any]:
    """Every feature of the layer (or those in `box`), in the order QGIS numbered them."""
    request = QgsFeatureRequest()
    if box is not None:
        request.setFilterRect(QgsRectangle(*box))
    started = time.monotonic()
    names = layer.fields().names()
    rows = []
    for feature in layer.getFeatures(request):
        geometry = feature.geometry()
        rows.append(
            {
                "fid": feature.id(),
                "wkt": None if geometry.isNull() else geometry.asWkt(9),
                "attributes": {
                    n: plain(v) for n, v in zip(names, feature.attributes(), strict=True)
                },
            }
        )
    rows.sort(key=lambda r: r["fid"])
    return {"seconds": round(time.monotonic() - started, 1), "fields": names, "features": rows}


def tile_layer(base: str, collection: str, authcfg: str | None) -> QgsVectorTileLayer:
    """The collection's vector tiles as an XYZ vector tile layer, filled in one colour."""
    url = f"{base}/collections/{collection}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
    uri = QgsDataSourceUri()
    uri.setParam("type", "xyz")
    uri.setParam("url", url)
    uri.setParam("zmin", "0")
    uri.setParam("zmax", "18")
    if authcfg:
        uri.setAuthConfigId(authcfg)
    layer = QgsVectorTileLayer(bytes(uri.encodedUri()).decode(), f"{collection} tiles")
    style = QgsVectorTileBasicRendererStyle("fill", None, 2)  # 2: polygons
    style.setSymbol(QgsFillSymbol.createSimple({"color": "255,0,255,255", "outline_style": "no"}))
    renderer = QgsVectorTileBasicRenderer()
    renderer.setStyles([style])
    layer.setRenderer(renderer)
    return layer


def render(layers: list[Any], extent: QgsRectangle, size: QSize, path: Path | None = None) -> Any:
    """Render the layers (top first) in Web Mercator with QgsMapRendererParallelJob."""
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setOutputSize(size)
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setFlag(QgsMapSettings.Antialiasing, True)
    settings.setExtent(extent)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    if path is None:
        return image
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), "PNG"):
        raise SystemExit(f"could not save {path}")
    return image


def magenta_pixels(image: Any) -> int:
    """How many pixels the tile layer's fill coloured."""
    count = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            count += c.red() > 200 and c.green() < 60 and c.blue() > 200
    return count


def style_map(grids: QgsVectorLayer, billboards: QgsVectorLayer) -> None:
    """Grids as outlined cells labelled with their Chinese names, billboards as red dots."""
    grids.renderer().setSymbol(
        QgsFillSymbol.createSimple(
            {"color": "66,133,244,25", "outline_color": "30,70,160,255", "outline_width": "0.3"}
        )
    )
    label = QgsPalLayerSettings()
    label.fieldName = 'CASE WHEN "level" = \'street\' THEN "name" END'
    label.isExpression = True
    text = QgsTextFormat()
    text.setFont(QFont("Noto Sans CJK SC", 11, QFont.Bold))
    text.setSize(11)
    text.setColor(QColor(20, 40, 110))
    text.buffer().setEnabled(True)
    text.buffer().setSize(1)
    text.buffer().setColor(QColor(255, 255, 255))
    label.setFormat(text)
    grids.setLabeling(QgsVectorLayerSimpleLabeling(label))
    grids.setLabelsEnabled(True)
    billboards.renderer().setSymbol(
        QgsMarkerSymbol.createSimple(
            {"name": "circle", "color": "220,30,30,220", "size": "1.2", "outline_style": "no"}
        )
    )


def in_mercator(layer: QgsVectorLayer) -> QgsRectangle:
    """The layer's extent in Web Mercator, with a margin."""
    to_mercator = QgsCoordinateTransform(
        layer.crs(), QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance()
    )
    extent = to_mercator.transformBoundingBox(layer.extent())
    extent.scale(1.05)
    return extent


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Sign in, read the layers, read the tiles, render the map; what QGIS saw."""
    base = job["base"]
    authcfg = store_auth(base, job["username"], job["password"], job["master_password"])
    result: dict[str, Any] = {"layers": {}}
    opened = {}
    for collection, box in job["layers"].items():
        opened[collection] = layer = oapif_layer(base, collection, authcfg, box is not None)
        result["layers"][collection] = read(layer, box)
    grids, billboards = opened["grids"], opened["billboards"]
    style_map(grids, billboards)
    extent = in_mercator(grids)
    render([billboards, grids], extent, QSize(1400, 1100), Path(job["screenshot"]))
    small = QSize(400, 300)
    signed = render([tile_layer(base, "grids", authcfg)], extent, small, Path(job["tiles"]))
    anonymous = render([tile_layer(base, "grids", None)], extent, small)
    result["tiles"] = {"signed_in": magenta_pixels(signed), "anonymous": magenta_pixels(anonymous)}
    return result


def log(message: str, tag: str, level: Any) -> None:
    """QGIS's own messages (provider and sign-in errors) on stderr, for the test's report."""
    print(f"QGIS [{tag}] {message}", file=sys.stderr, flush=True)


def main(job_path: str, result_path: str) -> None:
    """Run the job and write its result; every layer is gone before QGIS shuts down."""
    app = QgsApplication([], False)
    app.initQgis()
    QgsApplication.messageLog().messageReceived.connect(log)
    result = run(json.loads(Path(job_path).read_text()))
    Path(result_path).write_text(json.dumps(result, ensure_ascii=False))
    app.exitQgis()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
