"""门前三包 merchants' QR codes and public responsibility cards.

`GET /merchants/{id}/qr.png` (signed in, within the viewer's scope) draws the QR code printed on
the shop's wall; it encodes the card's public address, `/m/{token}` under the configured public
URL. The card needs no sign-in; its report form is guarded like an anonymous form can be: it must
come from our own origin with the form token the card was rendered with (an HMAC of the card and
the time, so a stale or forged form is refused), and each client address and each card takes only
so many reports an hour.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import time
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from api import client_address, csrf
from api.auth import ViewerDep
from api.deps import ConnectionDep
from api.openapi import answers
from api.security import html_page
from layers.errors import CsrfFailed
from layers.merchants import cards
from webmap.card import card_page, thanks_page

router = APIRouter(tags=["merchants 门前三包"])
pages = APIRouter(include_in_schema=False)

Token = Annotated[str, Path(max_length=64, description="the card's token")]
QR_SCALE = 8  # pixels per module: about 3 cm wide at print resolution for a card URL


def card_url(request: Request, token: str) -> str:
    """The card's public address: under the configured public URL, else the request's own."""
    base: str | None = getattr(request.app.state, "public_base", None)
    if base is None:
        scheme = client_address.scheme_of(request, request.app.state.trusted_proxies)
        base = f"{scheme}://{request.headers.get('host', request.url.netloc)}"
    return f"{base.rstrip('/')}/m/{token}"


@router.get(
    "/merchants/{merchant_id}/qr.png",
    summary="A merchant's QR code / 门前三包二维码",
    responses=answers("image/png"),
)
def merchant_qr(
    merchant_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    conn: ConnectionDep,
    viewer: ViewerDep,
) -> Response:
    """The PNG QR code opening the merchant's public responsibility card."""
    token = cards.card_token(conn, merchant_id, viewer)
    out = io.BytesIO()
    segno.make_qr(card_url(request, token), error="m").save(out, kind="png", scale=QR_SCALE)
    return Response(out.getvalue(), media_type="image/png", headers={"Cache-Control": "private"})


def _form_token(key: str, token: str, issued: int) -> str:
    mac = hmac.new(key.encode(), f"citygrid-card\x00{token}\x00{issued}".encode(), hashlib.sha256)
    return f"{issued}.{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


def _check_form(request: Request, token: str, sent: str) -> None:
    """A report from the card's own page, rendered not too long ago."""
    csrf.check_origin(request, required=True)
    issued_text, _, _ = sent.partition(".")
    max_age = request.app.state.cards.form_minutes * 60
    refused = CsrfFailed(
        "The report form is stale or not the card's own: open the card again.",
        "举报表单已过期或不是本责任牌的表单，请重新扫码打开责任牌。",
    )
    if not issued_text.isdigit() or not 0 <= time.time() - int(issued_text) <= max_age:
        raise refused
    expected = _form_token(request.app.state.issuer.key, token, int(issued_text))
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise refused


@pages.get("/m/{token}", response_class=HTMLResponse)
def card(token: Token, request: Request, conn: ConnectionDep) -> HTMLResponse:
    """The public responsibility card (智慧责任牌) with its report form."""
    found = cards.card(conn, token)
    form = _form_token(request.app.state.issuer.key, token, int(time.time()))
    return html_page(request, card_page(found, token, form))


@pages.post("/m/{token}/reports", response_class=HTMLResponse, status_code=201)
def card_report(
    token: Token,
    request: Request,
    form_token: Annotated[str, Form(max_length=200)],
    category: Annotated[str, Form(max_length=10)],
    description: Annotated[str, Form(max_length=2000)],
) -> HTMLResponse:
    """A problem reported from the card: a public case at the shop, awaiting verification."""
    state = request.app.state
    with state.engine.connect() as conn:
        found = cards.card(conn, token)
    _check_form(request, token, form_token)
    cards.checked_report(category, description)  # a bad form costs no report of the budget
    state.card_address_budget.take(client_address.of_request(request, state.trusted_proxies))
    state.card_merchant_budget.take(str(found.id))
    with state.engine.begin() as conn:
        case_id = cards.report(
            conn, found, category, description, state.calendars, state.verify_within
        )
    return html_page(request, thanks_page(found, token, case_id), status_code=201)
