"""Rebuild webmap/static/vendor from the npm registry and the folium wheel (developers only).

The result is committed, so `pip install .` on an intranet machine needs no npm. Every CDN URL that
folium, branca and the plugins the pages use is mapped to a local file in `manifest.json`, with the
package, version and licence of each file recorded there and in `ASSETS.md`.

Run: .venv/bin/python scripts/vendor_assets.py   (needs `npm` and the npm registry)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import folium

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "webmap" / "static" / "vendor"
FOLIUM_TEMPLATES = Path(folium.__file__).parent / "templates"
GLYPHICONS_FONTS = "../../bootstrap@3.4.1/dist/fonts/"


@dataclass
class Package:
    """One npm package (or the folium wheel) and the CDN URLs it stands in for."""

    name: str
    version: str
    urls: dict[str, str]  # CDN URL -> path inside the package
    extra: list[str] = field(default_factory=list)  # directories the files refer to
    licence_files: list[str] = field(
        default_factory=lambda: ["LICENSE", "LICENSE.md", "LICENSE.txt", "MIT-LICENCE.txt"]
    )
    rewrite: dict[str, dict[str, str]] = field(default_factory=dict)  # path -> {old: new}
    licence: str | None = None  # where package.json names none

    @property
    def folder(self) -> str:
        return f"{self.name.replace('/', '-').lstrip('@')}@{self.version}"


PACKAGES = [
    Package(
        "leaflet",
        "1.9.3",
        {
            "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "dist/leaflet.js",
            "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "dist/leaflet.css",
        },
        extra=["dist/images"],
    ),
    Package(
        "jquery",
        "3.7.1",
        {
            "https://code.jquery.com/jquery-3.7.1.min.js": "dist/jquery.min.js",
            "https://cdnjs.cloudflare.com/ajax/libs/jquery/3.7.1/jquery.min.js": "dist/jquery.min.js",
        },
    ),
    Package(
        "bootstrap",
        "5.2.2",
        {
            "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": "dist/js/bootstrap.bundle.min.js",
            "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "dist/css/bootstrap.min.css",
        },
    ),
    Package(
        "bootstrap",
        "3.4.1",
        {
            "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": "dist/css/bootstrap-glyphicons.css",
        },
        extra=["dist/fonts"],
    ),
    Package(
        "@fortawesome/fontawesome-free",
        "6.2.0",
        {
            "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": "css/all.min.css",
        },
        extra=["webfonts"],
    ),
    Package(
        "drmonty-leaflet-awesome-markers",
        "2.0.2",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": "js/leaflet.awesome-markers.min.js",
            "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": "css/leaflet.awesome-markers.css",
        },
        extra=["css/images"],
        licence="MIT (upstream Leaflet.awesome-markers by Lennard Voogdt)",
    ),
    Package(
        "leaflet-draw",
        "1.0.2",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.js": "dist/leaflet.draw.js",
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.css": "dist/leaflet.draw.css",
        },
        extra=["dist/images"],
    ),
    Package(
        "iso8601-js-period",
        "0.2.1",
        {
            "https://cdn.jsdelivr.net/npm/iso8601-js-period@0.2.1/iso8601.min.js": "iso8601.js",
        },
    ),
    Package(
        "leaflet-timedimension",
        "1.1.1",
        {
            "https://cdn.jsdelivr.net/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.min.js": "dist/leaflet.timedimension.min.js",
            "https://cdn.jsdelivr.net/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css": "dist/leaflet.timedimension.control.css",
        },
        rewrite={
            "dist/leaflet.timedimension.control.css": {
                "//netdna.bootstrapcdn.com/bootstrap/3.0.0/fonts/": GLYPHICONS_FONTS,
            }
        },
    ),
    Package(
        "leaflet.markercluster",
        "1.1.0",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js": "dist/leaflet.markercluster.js",
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css": "dist/MarkerCluster.css",
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css": "dist/MarkerCluster.Default.css",
        },
    ),
    Package(
        "leaflet-realtime",
        "2.2.0",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet-realtime/2.2.0/leaflet-realtime.js": "dist/leaflet-realtime.js",
        },
    ),
    Package(
        "leaflet.vectorgrid",
        "1.3.0",
        {
            "https://unpkg.com/leaflet.vectorgrid@latest/dist/Leaflet.VectorGrid.bundled.js": "dist/Leaflet.VectorGrid.bundled.js",
            "https://unpkg.com/leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.js": "dist/Leaflet.VectorGrid.bundled.js",
        },
    ),
    Package(
        "leaflet.fullscreen",
        "3.0.0",
        {
            "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js": "Control.FullScreen.js",
            "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css": "Control.FullScreen.css",
        },
        extra=["icon-fullscreen.svg"],
    ),
    Package(
        "leaflet.locatecontrol",
        "0.66.2",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.js": "dist/L.Control.Locate.min.js",
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.css": "dist/L.Control.Locate.min.css",
        },
    ),
    Package(
        "leaflet-measure",
        "2.1.7",
        {
            "https://cdn.jsdelivr.net/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.js": "dist/leaflet-measure.min.js",
            "https://cdn.jsdelivr.net/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.css": "dist/leaflet-measure.css",
        },
        extra=["dist/images"],
    ),
    Package(
        "swagger-ui-dist",
        "5.35.0",
        {
            "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css": "swagger-ui.css",
            "https://fastapi.tiangolo.com/img/favicon.png": "favicon-32x32.png",
        },
    ),
    Package(
        "d3",
        "3.5.5",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js": "d3.min.js",
        },
    ),
]

FOLIUM_FILES = {
    "https://cdn.jsdelivr.net/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js": (
        "leaflet_heat.min.js",
        "BSD-2-Clause (Leaflet.heat, Vladimir Agafonkin)",
    ),
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/pa7_hm.min.js": (
        "pa7_hm.min.js",
        "MIT (heatmap.js, Patrick Wied)",
    ),
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/pa7_leaflet_hm.min.js": (
        "pa7_leaflet_hm.min.js",
        "MIT (heatmap.js Leaflet plugin, Patrick Wied)",
    ),
}
ROTATE_URL = "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css"
ABSOLUTE_CSS_URL = re.compile(r"url\(\s*['\"]?(https?:)?//", re.I)


def npm_pack(spec: str, into: Path) -> tarfile.TarFile:
    out = subprocess.run(
        ["npm", "pack", "--silent", spec], cwd=into, capture_output=True, text=True, check=True
    )
    return tarfile.open(into / out.stdout.strip().splitlines()[-1])


def members(tar: tarfile.TarFile, path: str) -> list[tarfile.TarInfo]:
    prefix = f"package/{path}"
    return [
        m
        for m in tar.getmembers()
        if m.isfile() and (m.name == prefix or m.name.startswith(prefix + "/"))
    ]


def glyphicons_only(css: str) -> str:
    start = css.index("@font-face")
    end = css.index("* {\n  -webkit-box-sizing")
    return (
        "/* Glyphicons of Bootstrap 3.4.1 (MIT), cut from dist/css/bootstrap.css */\n"
        + css[start:end]
    )


def vendor_package(pkg: Package, work: Path, manifest: dict[str, object]) -> None:
    tar = npm_pack(f"{pkg.name}@{pkg.version}", work)
    dest = VENDOR / pkg.folder
    meta = json.loads(tar.extractfile("package/package.json").read())  # type: ignore[union-attr]
    wanted = set(pkg.urls.values()) | set(pkg.extra)
    files: list[str] = []
    for path in sorted(wanted):
        source = path
        if path == "dist/css/bootstrap-glyphicons.css":
            source = "dist/css/bootstrap.css"
        found = members(tar, source)
        if not found:
            sys.exit(f"{pkg.name}@{pkg.version} has no {source}")
        for m in found:
            rel = path if source != path else m.name.removeprefix("package/")
            data = tar.extractfile(m).read()  # type: ignore[union-attr]
            if source != path:
                data = glyphicons_only(data.decode()).encode()
            for old, new in pkg.rewrite.get(rel, {}).items():
                data = data.replace(old.encode(), new.encode())
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(data)
            files.append(rel)
    licence = next((m for n in pkg.licence_files for m in members(tar, n)), None)
    if licence:
        (dest / "LICENSE").write_bytes(tar.extractfile(licence).read())  # type: ignore[union-attr]
    else:
        (dest / "LICENSE").write_text(
            f"{pkg.name}@{pkg.version}: {meta.get('license') or pkg.licence}; the package ships no licence file.\n"
        )
    named = meta.get("license") or next((x.get("type") for x in meta.get("licenses", [])), None)
    manifest["packages"][f"{pkg.name}@{pkg.version}"] = {  # type: ignore[index]
        "folder": pkg.folder,
        "license": named or pkg.licence,
        "files": files,
    }
    for url, path in pkg.urls.items():
        manifest["assets"][url] = f"vendor/{pkg.folder}/{path}"  # type: ignore[index]


def vendor_folium(manifest: dict[str, object]) -> None:
    dest = VENDOR / f"folium@{folium.__version__}"
    dest.mkdir(parents=True, exist_ok=True)
    for url, (name, licence) in FOLIUM_FILES.items():
        shutil.copyfile(FOLIUM_TEMPLATES / name, dest / name)
        manifest["assets"][url] = f"vendor/folium@{folium.__version__}/{name}"  # type: ignore[index]
        manifest["packages"][f"folium@{folium.__version__}:{name}"] = {
            "folder": dest.name,
            "license": licence,
            "files": [name],
        }  # type: ignore[index]
    rotate = "".join(f".fa-rotate-{n}{{transform:rotate({n}deg)}}" for n in range(360))
    (dest / "leaflet.awesome.rotate.min.css").write_text(
        "/* citygrid: rotation classes used by folium.Icon(angle=...) */\n" + rotate + "\n"
    )
    manifest["assets"][ROTATE_URL] = (
        f"vendor/folium@{folium.__version__}/leaflet.awesome.rotate.min.css"  # type: ignore[index]
    )


def check_offline() -> None:
    for css in VENDOR.rglob("*.css"):
        if ABSOLUTE_CSS_URL.search(css.read_text(errors="replace")):
            sys.exit(f"{css} still loads something from another host")


def write_notes(manifest: dict[str, object]) -> None:
    lines = [
        "# Vendored web assets",
        "",
        "Built by `scripts/vendor_assets.py`; served under `/static/vendor/`.",
        "",
        "| package@version | licence | files |",
        "| --- | --- | --- |",
    ]
    for spec, info in sorted(manifest["packages"].items()):  # type: ignore[attr-defined]
        lines.append(f"| {spec} | {info['license']} | {', '.join(info['files'])} |")
    lines += [
        "",
        "Changes to upstream files:",
        "- `bootstrap@3.4.1/dist/css/bootstrap-glyphicons.css`: the Glyphicons rules cut out of Bootstrap 3.4.1's CSS "
        "(stands in for netdna's bootstrap 3.0.0 `bootstrap-glyphicons.css`).",
        "- `leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css`: Glyphicons fonts loaded from "
        "`bootstrap@3.4.1/dist/fonts/` instead of netdna.",
        "- `folium@*/leaflet.awesome.rotate.min.css`: written by citygrid (the rotation classes of folium.Icon).",
        "- Where the CDN served a minified file the package does not ship (iso8601, leaflet.fullscreen), the "
        "unminified file of the same version stands in for it.",
        "",
    ]
    (VENDOR / "ASSETS.md").write_text("\n".join(lines))


def main() -> None:
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    VENDOR.mkdir(parents=True)
    manifest: dict[str, object] = {"assets": {}, "packages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in PACKAGES:
            vendor_package(pkg, Path(tmp), manifest)
    vendor_folium(manifest)
    check_offline()
    (VENDOR / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    )
    write_notes(manifest)
    size = sum(f.stat().st_size for f in VENDOR.rglob("*") if f.is_file())
    print(f"vendored {len(manifest['assets'])} URLs, {size / 1e6:.1f} MB")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
