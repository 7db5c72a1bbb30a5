"""What every `citygrid` command prints with, and how its errors become one clear sentence."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from layers.errors import CitygridError

console = Console(stderr=True, soft_wrap=True)
stdout = Console(soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def say(message: str) -> None:
    """Print one progress line for the user."""
    console.print(f"[cyan]citygrid[/]: {message}")


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn citygrid errors into one clear sentence and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CitygridError as exc:
            en, zh = escape(exc.message_en), escape(exc.message_zh)
            console.print(f"[red]citygrid: {en}[/]\n[red]citygrid：{zh}[/]")
            raise typer.Exit(1) from None

    return wrapper
