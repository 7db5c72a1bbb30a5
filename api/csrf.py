"""Cross-site write protection for the pages' session cookie.

A browser attaches the cookie to any request, whichever site started it, so a write authenticated
by the cookie must show that it comes from the application's own pages: the browser's Origin (or
Referer) names the application's origin, Sec-Fetch-Site is not another site, and the request
carries the token the page was rendered with. Bearer tokens are not sent by browsers on their own,
so requests carrying one need none of this.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import Request

from api import client_address
from layers.errors import CsrfFailed

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = "X-CSRF-Token"
META = "csrf-token"
DEFAULT_PORTS = {"http": 80, "https": 443}
BROWSER_SITES = frozenset({"same-origin", "none"})


def token_for(key: str, session: str) -> str:
    """The token of one session: an HMAC of the cookie's value, so every sign-in has its own."""
    mac = hmac.new(key.encode(), b"citygrid-csrf\x00" + session.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL (default port left out), or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    shown = "" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{parts.hostname}{shown}"


def expected_origin(request: Request) -> str | None:
    """The application's own origin: the configured public URL, else the request's scheme (as a
    trusted proxy forwarded it) and Host."""
    configured: str | None = getattr(request.app.state, "public_origin", None)
    if configured:
        return configured
    host = request.headers.get("host")
    scheme = client_address.scheme_of(request, getattr(request.app.state, "trusted_proxies", ()))
    return origin_of(f"{scheme}://{host}") if host else None


def _refused(reason_en: str, reason_zh: str) -> CsrfFailed:
    return CsrfFailed(
        f"Cross-site request refused: {reason_en} Send changes from the application's own pages.",
        f"已拒绝跨站请求：{reason_zh}请在本系统的页面中操作。",
    )


def check_origin(request: Request, required: bool) -> None:
    """Refuse a request the browser says comes from another site; without Origin or Referer too
    when `required`."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in BROWSER_SITES:
        raise _refused(f"the browser sent it from another site ({site}).", "请求来自其他网站。")
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        if required:
            raise _refused("it names no Origin or Referer.", "请求未注明来源（Origin/Referer）。")
        return
    own = expected_origin(request)
    if own is None or origin_of(claimed) != own:
        raise _refused(
            f"it comes from {claimed[:100]!r}, not {own}.", "请求来源与本系统地址不一致。"
        )


def check_cookie_write(request: Request, key: str, session: str) -> None:
    """A change authenticated by the session cookie: from our own origin, with the page's token."""
    if request.method in SAFE_METHODS:
        return
    check_origin(request, required=True)
    sent = request.headers.get(HEADER)
    if not sent:
        raise _refused(f"the {HEADER} header is missing.", f"缺少 {HEADER} 请求头。")
    if not hmac.compare_digest(sent.encode(), token_for(key, session).encode()):
        raise _refused(
            f"the {HEADER} header does not belong to this session.",
            f"{HEADER} 与当前登录不符（页面可能已过期，请刷新）。",
        )


def same_origin(request: Request) -> None:
    """Signing in and out: a browser's form must come from our own pages (no login CSRF)."""
    check_origin(request, required=False)
