"""What every `citygrid` command prints with, and how its errors become one clear sentence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, NoReturn, ParamSpec, Protocol, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.config_file import CitygridSettings, config_key, settings_classes
from layers.errors import CitygridError

console = Console(stderr=True, soft_wrap=True)
stdout = Console(soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


class BadRow(Protocol):
    """One problem of a file's row, as every row report lists it."""

    @property
    def row(self) -> int: ...
    @property
    def field(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def message(self) -> str: ...


class RowsRefused(Protocol):
    """A file refused for its rows: a sentence in each language and the bad rows."""

    message_zh: str
    message_en: str

    @property
    def report(self) -> Any: ...


def print_bad_rows(title: str, errors: Sequence[BadRow], shown: int = 50) -> None:
    """The bad rows of a refused file as one table: row, field, value and problem."""
    table = Table(title=title)
    for column in ("行号", "字段", "取值", "问题"):
        table.add_column(column)
    for e in errors[:shown]:
        table.add_row(str(e.row), e.field, e.value, e.message)
    stdout.print(table)


def refuse_rows(refused: RowsRefused) -> NoReturn:
    """Print a refused file's bad rows and its reason, and stop with status 1."""
    print_bad_rows(refused.message_zh, refused.report.errors)
    console.print(f"[red]citygrid: {refused.message_en}[/]")
    raise typer.Exit(1)


def say(message: str) -> None:
    """Print one progress line for the user."""
    console.print(f"[cyan]citygrid[/]: {message}")


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn citygrid errors and invalid settings into one clear sentence and exit status 1,
    never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CitygridError as exc:
            en, zh = escape(exc.message_en), escape(exc.message_zh)
            console.print(f"[red]citygrid: {en}[/]\n[red]citygrid：{zh}[/]")
            raise typer.Exit(1) from None
        except ValidationError as exc:
            cls = _settings_class(exc.title)
            if cls is None:
                raise
            detail = escape(_settings_problems(cls, exc))
            console.print(
                f"[red]citygrid: invalid settings: {detail}[/]\n[red]citygrid：设置无效：{detail}[/]"
            )
            raise typer.Exit(1) from None

    return wrapper


def _settings_class(title: str) -> type[CitygridSettings] | None:
    """The settings class a validation error is about, if it is one."""
    return next((cls for cls in settings_classes() if cls.__name__ == title), None)


def _settings_problems(cls: type[CitygridSettings], exc: ValidationError) -> str:
    """Each invalid setting named as its `CITYGRID_*` variable, with what is wrong."""
    named = []
    for error in exc.errors():
        first = str(error["loc"][0]) if error["loc"] else ""
        field = cls.model_fields.get(first)
        key = config_key(cls, first, field) if field else first.lower().removeprefix("citygrid_")
        named.append(f"CITYGRID_{key.upper()}: {error['msg']}")
    return "; ".join(named)
