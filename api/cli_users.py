"""`citygrid users`: accounts and roles, from the command line of the server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli_db import actor, transaction
from api.console import friendly, stdout
from layers.accounts import users
from layers.registry import ROLE_LABELS, Role

app = typer.Typer(help="User accounts and roles (用户与角色).", no_args_is_help=True)
RoleArg = Annotated[str, typer.Option("--role", help=f"One of {', '.join(r.value for r in Role)}")]
CountyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--county",
        metavar="ADCODE",
        help="A county the account reads and writes (repeat for several; "
        "none only for the deployment's admin)",
    ),
]


def _password(given: str | None) -> str:
    if given is not None:
        return given
    password: str = typer.prompt("密码 Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command("add")
@friendly
def add(
    name: Annotated[str, typer.Argument(help="User name: 2-64 letters, digits, _ . -")],
    role: RoleArg,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", metavar="CODE", help="An inspector's grid (repeat for several)"),
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Password (asked for, hidden, when not given)")
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Full name shown on pages")] = None,
    unit: Annotated[str | None, typer.Option(help="A handling unit's name (role handler)")] = None,
    county: CountyOpt = None,
) -> None:
    """Create an account working in the counties given with --county; an inspector sees only
    the grids given with --grid, a handling unit (--role handler) only the cases dispatched to
    its --unit."""
    password_hash = users.hash_password(_password(password), name, display_name or "")
    with transaction() as conn:
        account = users.add(
            conn,
            name,
            role,
            password_hash,
            actor(),
            display_name,
            list(grid or []),
            unit,
            list(county or []),
        )
    grids = f", grids {', '.join(account.grids)}" if account.grids else ""
    counties = ", ".join(account.counties) or "every county"
    stdout.print(f"created {account.username} ({account.role.value}{grids}; {counties})")


@app.command("set-counties")
@friendly
def set_counties(
    name: Annotated[str, typer.Argument(help="User name")], county: CountyOpt = None
) -> None:
    """Replace the counties an account reads and writes (its sign-ins end)."""
    with transaction() as conn:
        account = users.set_counties(conn, name, list(county or []), actor())
    stdout.print(f"{account.username}: {', '.join(account.counties) or 'every county'}")


@app.command("list")
@friendly
def list_users() -> None:
    """Every account with its role, state and grids."""
    with transaction() as conn:
        accounts = users.list_accounts(conn)
    table = Table(title="用户")
    for column in ("用户名", "姓名", "角色", "状态", "所辖区县", "负责网格", "处置单位"):
        table.add_column(column)
    for a in accounts:
        table.add_row(
            a.username,
            a.display_name or "—",
            f"{ROLE_LABELS[a.role]} ({a.role.value})",
            "停用" if a.disabled else "正常",
            "、".join(a.counties) or "全部",
            "、".join(a.grids) or "—",
            a.unit or "—",
        )
    stdout.print(table)


@app.command("disable")
@friendly
def disable(name: Annotated[str, typer.Argument(help="User name")]) -> None:
    """Disable an account: it can no longer sign in, and its tokens stop working at once."""
    with transaction() as conn:
        users.disable(conn, name, actor())
    stdout.print(f"disabled {name}")


@app.command("set-role")
@friendly
def set_role(
    name: Annotated[str, typer.Argument(help="User name")],
    role: RoleArg,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", metavar="CODE", help="An inspector's grids (replace the old ones)"),
    ] = None,
    unit: Annotated[str | None, typer.Option(help="A handling unit's name (role handler)")] = None,
) -> None:
    """Change an account's role (and an inspector's grids, a unit's name); its tokens stop working."""
    with transaction() as conn:
        account = users.set_role(conn, name, role, actor(), unit)
        if grid is not None:
            users.assign_grids(conn, account, list(grid))
    stdout.print(f"{name} is now {role}")


@app.command("passwd")
@friendly
def passwd(
    name: Annotated[str, typer.Argument(help="User name")],
    password: Annotated[
        str | None, typer.Option(help="New password (asked for, hidden, when not given)")
    ] = None,
) -> None:
    """Set a new password; the account's tokens stop working."""
    given = _password(password)
    with transaction() as conn:
        account = users.get(conn, name)
        password_hash = users.hash_password(given, account.username, account.display_name or "")
        users.set_password(conn, name, password_hash, actor())
    stdout.print(f"password of {name} changed")
