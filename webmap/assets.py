"""Every script, stylesheet and font of a page comes from the application itself.

Folium, branca and the plugins add CDN links to the page header; `OfflineFigure` maps each one
to its vendored copy (see `static/vendor/manifest.json`) as it is added, and refuses any link that
has no local copy. The rendered page is then checked once more for any absolute URL that is not a
configured tile server, so nothing a future plugin adds can go online unnoticed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from typing import Any

from branca.element import CssLink, Element, Figure, JavascriptLink
from jinja2.utils import htmlsafe_json_dumps

STATIC_PREFIX = "/static/"
ABSOLUTE_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>)]*")


class OfflineAssetError(RuntimeError):
    """A page refers to something on another host that has no local copy."""


@lru_cache(maxsize=1)
def manifest() -> dict[str, str]:
    """CDN URL → path under /static/ of its vendored copy."""
    text = files("webmap").joinpath("static/vendor/manifest.json").read_text(encoding="utf-8")
    assets: dict[str, str] = json.loads(text)["assets"]
    return assets


def local_url(url: str) -> str:
    """The local address of an asset, raising when a remote one has no local copy."""
    if url.startswith("/") and not url.startswith("//"):
        return url
    try:
        return STATIC_PREFIX + manifest()[url]
    except KeyError:
        raise OfflineAssetError(
            f"{url} has no local copy: add it to scripts/vendor_assets.py and re-run it"
        ) from None


class OfflineHeader(Element):
    """The page header: script and stylesheet links are made local as they are added."""

    def add_child(
        self, child: Element, name: str | None = None, index: int | None = None
    ) -> Element:
        """Add a header element, localising JavascriptLink/CssLink URLs."""
        if isinstance(child, JavascriptLink | CssLink):
            child.url = local_url(child.url)
        return super().add_child(child, name=name, index=index)


class OfflineFigure(Figure):
    """A branca Figure whose header only ever links local assets."""

    def __init__(self, title: str | None = None, allowed_urls: Iterable[str] = ()) -> None:
        super().__init__(title=title)
        previous = self.header
        self.header = OfflineHeader()
        self.header._parent = self
        for name, child in previous._children.items():
            self.header.add_child(child, name=name)
        self.allowed_urls = tuple(allowed_urls)

    def render(self, **kwargs: Any) -> str:
        """Render the page and refuse it if it still points at another host."""
        html = super().render(**kwargs)
        assert_offline(html, self.allowed_urls)
        return html


def remote_references(html: str, allowed_urls: Iterable[str] = ()) -> list[str]:
    """Absolute URLs in `html` other than the allowed ones (tile URL templates)."""
    for allowed in allowed_urls:
        html = html.replace(allowed, "").replace(htmlsafe_json_dumps(allowed)[1:-1], "")
    return ABSOLUTE_URL.findall(html)


def assert_offline(html: str, allowed_urls: Iterable[str] = ()) -> None:
    """Raise when a rendered page refers to any host but the configured tile servers."""
    found = remote_references(html, allowed_urls)
    if found:
        raise OfflineAssetError(
            f"the page refers to other hosts: {', '.join(sorted(set(found))[:5])}"
        )
