"""Security headers on every response, and pages whose own inline scripts carry the response's nonce.

Content-Security-Policy lets a page run scripts and styles from the application only, plus the
inline blocks it was rendered with (they carry a nonce made afresh for each response); images may
also come from the configured tile servers. Responses are never framed, never sniffed, name no
page to other sites, and nothing but the static assets is kept in a cache: what the API answers
depends on who asks.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import requestid

STATIC_PREFIX = "/static/"
NONCE_KEY = "csp_nonce"
FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the pages'
    # own writes, and the CSRF check needs their real origin
    "Referrer-Policy": "same-origin",
}
NO_STORE = "no-store"
PLACEHOLDER = re.compile(r"\{[^}]*\}")


def tile_sources(tile_urls: Iterable[str]) -> list[str]:
    """CSP sources of tile URL templates: `https://t{s}.example.cn/…` becomes `https://*.example.cn`."""
    sources = []
    for url in tile_urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        labels = parts.netloc.split(".")
        if PLACEHOLDER.search(labels[0]):
            labels[0] = "*"
        host = ".".join(labels)
        if not PLACEHOLDER.search(host):
            sources.append(f"{parts.scheme}://{host}")
    return sorted(set(sources))


def content_security_policy(nonce: str, image_sources: Iterable[str] = ()) -> str:
    """The policy of one response."""
    images = " ".join(["'self'", "data:", "blob:", *image_sources])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            # Leaflet and the plugins position and colour elements with style attributes
            "style-src-attr 'unsafe-inline'",
            f"img-src {images}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """ASGI middleware: a nonce for each request, and the security headers on its response."""

    def __init__(self, app: ASGIApp, image_sources: Iterable[str] = ()) -> None:
        self.app = app
        self.image_sources = tuple(image_sources)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its nonce; add the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})[NONCE_KEY] = nonce
        static = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = content_security_policy(
                    nonce, self.image_sources
                )
                for name, value in FIXED_HEADERS.items():
                    headers[name] = value
                if not static and "cache-control" not in headers:
                    headers["Cache-Control"] = NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _InlineTags(HTMLParser):
    """Finds where the name of each <script> and <style> start tag ends (script text is skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.spots: list[tuple[int, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            line, column = self.getpos()
            self.spots.append((line, column + 1 + len(tag)))


def with_nonce(html: str, nonce: str) -> str:
    """The page with `nonce` on each of its own <script> and <style> elements."""
    finder = _InlineTags()
    finder.feed(html)
    finder.close()
    starts = [0] + [m.end() for m in re.finditer("\n", html)]  # the parser counts "\n" only
    offsets = sorted(starts[line - 1] + column for line, column in finder.spots)
    pieces, last = [], 0
    for offset in offsets:
        pieces += [html[last:offset], f' nonce="{nonce}"']
        last = offset
    return "".join(pieces) + html[last:]


def page_nonce(request: Request) -> str:
    """The nonce of this request (one is made when the middleware is not installed)."""
    state = request.scope.setdefault("state", {})
    nonce: str = state.setdefault(NONCE_KEY, secrets.token_urlsafe(18))
    return nonce


def html_page(
    request: Request, html: str, status_code: int = 200, meta: dict[str, str] | None = None
) -> HTMLResponse:
    """A page the policy lets run: its inline blocks carry the nonce, `meta` goes into its head;
    an error page shows the request's id (错误编号) that finds its log line."""
    rid = requestid.current()
    if status_code >= 400 and rid is not None:
        note = f'<p class="request-id">错误编号：<code>{escape(rid)}</code></p>'
        html = html.replace("</body>", note + "</body>", 1)
    if meta:
        tags = "".join(
            f'<meta name="{escape(name)}" content="{escape(value)}">'
            for name, value in sorted(meta.items())
        )
        html = re.sub(r"<head(\s[^>]*)?>", lambda m: m.group(0) + tags, html, count=1)
    return HTMLResponse(with_nonce(html, page_nonce(request)), status_code=status_code)
