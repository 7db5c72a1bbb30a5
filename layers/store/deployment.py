"""This deployment's own id, made at its first migration: the issuer and audience of its tokens."""

from __future__ import annotations

from sqlalchemy import Connection, text

from layers.errors import SetupError


def deployment_id(conn: Connection) -> str:
    """The id of the deployment whose database this is."""
    found = conn.execute(text("SELECT id FROM deployment")).scalar_one_or_none()
    if not found:
        raise SetupError(
            "The database names no deployment: run `citygrid db migrate`.",
            "数据库中没有部署编号：请运行 citygrid db migrate。",
        )
    return str(found)


def token_party(deployment: str) -> str:
    """The issuer and audience a deployment writes into its tokens and requires of them."""
    return f"citygrid:{deployment}"
