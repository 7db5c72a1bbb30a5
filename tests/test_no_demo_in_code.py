"""The demo county is data: nothing of it is written into the code outside the demo package."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEARCHED = ("gis", "layers", "api", "webmap")
ALLOWED = ("layers/demo/", "webmap/static/vendor/")  # the demo itself; third-party assets
SUFFIXES = {".py", ".html", ".js", ".css", ".j2", ".jinja", ".mako", ".sql", ".json", ".txt"}
DEMO = re.compile(r"启东|320681|qidong", re.IGNORECASE)


def findings() -> list[str]:
    """`file:line: text` of every mention of the demo county outside the demo package."""
    found = []
    for top in SEARCHED:
        for path in sorted((ROOT / top).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if not path.is_file() or path.suffix not in SUFFIXES or relative.startswith(ALLOWED):
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            found += [
                f"{relative}:{n}: {line.strip()}"
                for n, line in enumerate(lines, start=1)
                if DEMO.search(line)
            ]
    return found


def test_the_search_sees_what_it_looks_for() -> None:
    assert DEMO.search('ADCODE = "320681"') and DEMO.search("启东市") and DEMO.search("Qidong")
    assert not DEMO.search("三元区 350404")


def test_no_demo_county_outside_the_demo_package() -> None:
    found = findings()
    assert not found, "the demo county is written into the code:\n" + "\n".join(found)
