"""Reference data shipped with citygrid (installed as the `citygrid_data` package)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def data_file(name: str) -> Traversable:
    """A file shipped in this folder."""
    return files(__name__).joinpath(name)
