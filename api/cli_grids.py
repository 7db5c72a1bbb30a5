"""`citygrid import grids FILE...`: a county's whole grid hierarchy from the surveyors' files."""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path
from typing import Any, cast

from rich.markup import escape
from rich.table import Table

from api.console import console, say, stdout
from api.settings import DatabaseSettings, EditingSettings
from layers.engine import filein, fileout
from layers.engine.importing import parse_mapping
from layers.errors import BadQuery, GridEditRefused
from layers.grids import gridimport
from layers.store import db


def import_grids(
    paths: list[Path],
    county: str | None,
    valid_from: str | None,
    crs: str | None,
    pairs: list[str],
    encoding: str | None,
    dry_run: bool,
) -> None:
    """Read, check and (unless a dry run) store a county's grids; print every problem found."""
    if county is None or valid_from is None:
        raise BadQuery(
            "Importing grids needs --county ADCODE and --valid-from YYYY-MM-DD.",
            "导入网格需要指定 --county 县级代码 和 --valid-from 生效日期（YYYY-MM-DD）。",
        )
    try:
        day = date.fromisoformat(valid_from)
    except ValueError:
        raise BadQuery(
            f"--valid-from {valid_from!r} is not a date (YYYY-MM-DD).",
            f"--valid-from {valid_from!r} 不是日期（YYYY-MM-DD）。",
        ) from None
    named = fileout.encoding_name(encoding) if encoding is not None else None
    sources = []
    for path in paths:
        say(f"reading {path}")
        sources.append((path.name, filein.read(path, filein.FileLimits(), named)))
    settings = DatabaseSettings()
    engine = db.make_engine(settings.url(), settings.gk_epsg)
    try:
        db.check_connection(engine)
        with engine.begin() as conn:
            done = gridimport.import_grids(
                conn,
                sources,
                county,
                day,
                EditingSettings().check_options(),
                f"cli:{getpass.getuser()}",
                crs,
                parse_mapping(pairs, "="),
                dry_run,
            )
    except GridEditRefused as refused:
        _print_problems(refused)
        raise
    finally:
        engine.dispose()
    for f in done.files:
        say(f"{f['name']}: CRS {f['crs']}, encoding {f['encoding'] or '—'}")
        for note in f["notes"]:
            say(note)
    verb = "would be" if dry_run else "were"
    say(
        f"{done.rows:,} grids checked for county {county} as of {day}: {len(done.created):,} new "
        f"versions, {len(done.closed):,} closed, {done.unchanged:,} unchanged {verb} written"
        + (" (dry run, nothing written)" if dry_run else "")
    )
    if done.units_added:
        added = "would be added" if dry_run else "added"
        say(f"units {added} to the county's directory: {'、'.join(done.units_added)}")


def _print_problems(refused: GridEditRefused) -> None:
    problems = cast(list[dict[str, Any]], refused.details.get("problems") or [])
    if not problems:
        return
    table = Table(title=f"网格导入被拒绝：{len(problems)} 处问题，未写入任何数据")
    for column in ("问题", "文件", "行号", "说明"):
        table.add_column(column)
    for p in problems:
        table.add_row(
            escape(p["kind_label"]),
            escape(p["file"]),
            ", ".join(str(r) for r in p["rows"]),
            escape(p["message"]),
        )
    stdout.print(table)
    for p in problems:
        console.print(escape(f"{p['code']}: {p['message_en']}"))
