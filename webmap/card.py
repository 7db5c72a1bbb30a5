"""The public page of a 门前三包 merchant's responsibility card (智慧责任牌): plain HTML, no map, no
script and no outside asset, so it opens on any phone that scanned the QR code, even offline
from the internet inside the bureau's network."""

from __future__ import annotations

from html import escape

from layers.merchants.cards import DESCRIPTION_MAX, DUTIES, REPORT_CATEGORIES, Card

RATING_LABELS = {
    "green": ("绿色", "#1e8449"),
    "yellow": ("黄色", "#b7950b"),
    "red": ("红色", "#b03a2e"),
}

STYLE = """body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 0 auto;
max-width: 480px; padding: 12px 16px 32px; color: #1c2833; background: #fbfcfc; }
h1 { font-size: 1.35rem; margin: 0.4em 0; } h2 { font-size: 1.05rem; margin: 1.2em 0 0.4em; }
.board { border: 3px solid #1a5276; border-radius: 8px; padding: 12px 14px; background: #fff; }
.board header { background: #1a5276; color: #fff; margin: -12px -14px 10px; padding: 8px 14px; }
dl { display: grid; grid-template-columns: 6.5em 1fr; gap: 4px 8px; margin: 0; }
dt { color: #566573; } dd { margin: 0; }
.rating { display: inline-block; padding: 0 8px; border-radius: 4px; color: #fff; }
ol { padding-left: 1.3em; } li { margin-bottom: 4px; }
form label { display: block; margin: 8px 0 4px; } select, textarea, button { font-size: 1rem;
width: 100%; box-sizing: border-box; } textarea { min-height: 5em; }
button { margin-top: 10px; padding: 8px; background: #1a5276; color: #fff; border: 0;
border-radius: 4px; } .note { color: #566573; font-size: 0.85rem; }"""

PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{name} · 门前三包责任牌</title>
<style>{style}</style></head>
<body>
<section class="board" id="card">
<header><strong>门前三包 · 智慧责任牌</strong></header>
<h1 id="merchant-name">{name}</h1>
<dl>
<dt>责任区域</dt><dd id="frontage">{frontage}</dd>
<dt>地址</dt><dd>{address}</dd>
<dt>三色评级</dt><dd id="rating">{rating}</dd>
<dt>所在网格</dt><dd id="grid">{grid}</dd>
<dt>责任监督员</dt><dd id="inspector">{inspector}</dd>
</dl>
<h2>责任内容</h2>
<ol id="duties">{duties}</ol>
</section>
<h2>举报门前问题</h2>
<form method="post" action="/m/{token}/reports" id="report">
<input type="hidden" name="form_token" value="{form_token}">
<label for="category">问题类型</label>
<select id="category" name="category" required>{options}</select>
<label for="description">问题描述</label>
<textarea id="description" name="description" required minlength="2" maxlength="{max_len}"
 placeholder="请描述看到的问题（无需留下姓名和电话）"></textarea>
<button type="submit">提交举报</button>
<p class="note">举报无需登录，由网格监督员现场核实后处理。请勿填写任何个人信息。</p>
</form>
</body>
</html>
"""

THANKS = """<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>举报已收到 · 门前三包</title><style>{style}</style></head>
<body>
<h1>举报已收到</h1>
<p id="received">感谢您的监督！案件编号 <strong id="case-id">{case_id}</strong>，网格监督员将到现场核实。</p>
<p><a href="/m/{token}">返回{name}的责任牌</a></p>
</body>
</html>
"""


def _shown(value: object) -> str:
    return escape(str(value)) if value not in (None, "") else "—"


def card_page(card: Card, token: str, form_token: str) -> str:
    """The card with its duties and the report form."""
    label, colour = RATING_LABELS.get(card.rating or "", ("未评定", "#7f8c8d"))
    frontage = _shown(card.frontage)
    if card.frontage_m:
        frontage += f"（{card.frontage_m:g} 米）"
    duties = "".join(f"<li><strong>{escape(t)}</strong>：{escape(d)}</li>" for t, d in DUTIES)
    options = "".join(
        f'<option value="{escape(code)}">{escape(name)}</option>'
        for code, name in REPORT_CATEGORIES.items()
    )
    grid = _shown(card.grid_name) + (f"（{escape(card.grid_code)}）" if card.grid_code else "")
    return PAGE.format(
        style=STYLE,
        name=_shown(card.name),
        frontage=frontage,
        address=_shown(card.address),
        rating=f'<span class="rating" data-rating="{escape(card.rating or "")}" '
        f'style="background:{colour}">{label}</span>',
        grid=grid,
        inspector=_shown(card.inspector),
        duties=duties,
        token=escape(token),
        form_token=escape(form_token),
        options=options,
        max_len=DESCRIPTION_MAX,
    )


def thanks_page(card: Card, token: str, case_id: int) -> str:
    """The answer to a report sent from the card."""
    return THANKS.format(style=STYLE, case_id=case_id, token=escape(token), name=_shown(card.name))
