"""The demo accounts' user names, derived from the grids and units they serve, so the demo's
case histories can name the accounts that `citygrid demo load` creates."""

from __future__ import annotations

from layers.demo.owners import UNITS

DISPATCHER = "dispatcher"
LEADER = "leader"


def inspector_name(community_code: str) -> str:
    """The demo inspector's user name for a community grid: insp- and its six local digits."""
    return f"insp-{community_code[6:12]}"


def unit_name(community_code: str) -> str:
    """The demo handling unit's user name for a community grid: unit- and its six local digits."""
    return f"unit-{community_code[6:12]}"


def maintainer_name(unit: str) -> str:
    """The demo handler's user name for a unit of the demo directory: maint- and its number."""
    return f"maint-{[u.name for u in UNITS].index(unit) + 1:02d}"


def community_of(grid_code: str) -> str:
    """The code of the community grid a section grid belongs to."""
    return f"{grid_code[:12]}000"
