"""Pure geospatial functions: GCJ-02, Gauss-Krüger zones and areas, coverage, partition."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, box

from gis import zones
from gis.coverage import summarize_coverage
from gis.gcj02 import gcj02_to_wgs84, geometry_to_gcj02, geometry_to_wgs84, wgs84_to_gcj02
from gis.partition import kmeans, reading_order, voronoi_cells

GEOD = Geod(ellps="GRS80")


def _metres(lon1, lat1, lon2, lat2):  # type: ignore[no-untyped-def]
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def test_gcj02_round_trip_within_a_metre_across_china() -> None:
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(74, 134, 20000), rng.uniform(18, 53, 20000)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.max(_metres(lon, lat, back_lon, back_lat)) < 1.0


def test_gcj02_offset_at_qidong_is_hundreds_of_metres() -> None:
    g_lon, g_lat = wgs84_to_gcj02([121.657], [31.808])
    shift = _metres(121.657, 31.808, g_lon[0], g_lat[0])
    assert 300 < shift < 800


def test_gcj02_leaves_points_outside_china_alone() -> None:
    lon, lat = wgs84_to_gcj02([2.35, 139.7], [48.85, 35.68])
    assert lon.tolist() == [2.35, 139.7] and lat.tolist() == [48.85, 35.68]


def test_gcj02_geometry_round_trip() -> None:
    poly = box(121.6, 31.8, 121.7, 31.9)
    back = geometry_to_wgs84(geometry_to_gcj02(poly))
    assert shapely.hausdorff_distance(poly, back) < 1e-8


@pytest.mark.parametrize(
    ("lon", "epsg"),
    [
        (121.4, 4549),
        (121.6, 4550),
        (121.98, 4550),
        (117.6, 4548),
        (75.0, 4534),
        (135.0, 4554),
        (60.0, 4534),
    ],
)
def test_zone_by_longitude(lon: float, epsg: int) -> None:
    assert int(zones.zone_epsg(lon)) == epsg


def test_central_meridian_rejects_non_zones() -> None:
    assert zones.central_meridian(4550) == 123
    with pytest.raises(ValueError):
        zones.central_meridian(4326)


def _shoelace(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def test_area_matches_hand_computed_gauss_kruger_area() -> None:
    lonlat = np.array([[121.60, 31.80], [121.63, 31.80], [121.635, 31.83], [121.60, 31.82]])
    to_gk = Transformer.from_crs(4490, 4550, always_xy=True)
    hand = _shoelace(np.column_stack(to_gk.transform(lonlat[:, 0], lonlat[:, 1])))
    computed = zones.area_m2([Polygon(lonlat)])[0]
    assert computed == pytest.approx(hand, rel=1e-6)
    in_degrees = Polygon(lonlat).area
    assert abs(in_degrees - hand) / hand > 0.99  # degrees² are not square metres


def test_area_uses_each_geometrys_own_zone() -> None:
    west, east = box(121.40, 31.8, 121.41, 31.81), box(121.60, 31.8, 121.61, 31.81)
    assert zones.geometry_zone([west, east]).tolist() == [4549, 4550]
    forced = zones.area_m2([west], epsg=4550)[0]
    own = zones.area_m2([west])[0]
    assert own != forced and own == pytest.approx(forced, rel=1e-3)


def test_coverage_summary_finds_gaps_overlaps_and_spill() -> None:
    parent = box(0, 0, 100, 100)
    tiled = [box(0, 0, 50, 100), box(50, 0, 100, 100)]
    assert summarize_coverage(parent, tiled).ok(1e-9)
    gap = summarize_coverage(parent, [box(0, 0, 50, 100), box(60, 0, 100, 100)])
    assert gap.gap_m2 == pytest.approx(1000) and not gap.ok(1.0)
    overlap = summarize_coverage(parent, [box(0, 0, 55, 100), box(50, 0, 100, 100)])
    assert overlap.overlap_m2 == pytest.approx(500)
    spill = summarize_coverage(parent, [box(0, 0, 50, 100), box(50, 0, 110, 100)])
    assert spill.outside_m2 == pytest.approx(1000)
    bowtie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    assert summarize_coverage(parent, [bowtie, *tiled]).invalid == 1


def test_voronoi_cells_tile_a_concave_region() -> None:
    region = Polygon([(0, 0), (1000, 0), (1000, 1000), (500, 400), (0, 1000)])
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 1000, size=(5000, 2))
    pts = pts[shapely.contains_xy(region, pts[:, 0], pts[:, 1])]
    cells = voronoi_cells(region, kmeans(pts, 12, rng))
    assert len(cells) == 12 and all(isinstance(c, MultiPolygon) and not c.is_empty for c in cells)
    assert summarize_coverage(region, cells).ok(1e-6)


def test_reading_order_is_north_to_south_then_west_to_east() -> None:
    cells = [box(10, 0, 20, 10), box(0, 10, 10, 20), box(0, 0, 10, 10), box(10, 10, 20, 20)]
    assert reading_order(cells).tolist() == [1, 3, 2, 0]
