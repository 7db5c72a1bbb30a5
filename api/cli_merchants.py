"""`citygrid merchants`: the 门前三包 merchants' ratings kept up to date."""

from __future__ import annotations

import typer

from api.cli_db import transaction
from api.console import friendly, say
from layers.merchants.rerate import rerate

app = typer.Typer(
    help="门前三包 merchants: their red/yellow/green ratings (三色管理).", no_args_is_help=True
)


@app.command("rerate")
@friendly
def rerate_command() -> None:
    """Recompute every merchant's rating over the last 90 days and store those that changed
    (a case or a failed inspection leaving the window): run nightly, `citygrid service
    install` writes a timer for it."""
    with transaction() as conn:
        changed = rerate(conn)
    say(f"{changed} merchant ratings changed / {changed} 家商户评级已更新")
