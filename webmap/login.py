"""The sign-in page: plain HTML, phone-sized first, no script and nothing fetched from elsewhere."""

from __future__ import annotations

from html import escape

PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录 · citygrid 城市网格化管理</title>
<style>
  body {{ margin: 0; font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
         background: #eef2f5; color: #1c2833; }}
  main {{ max-width: 360px; margin: 12vh auto 0; padding: 24px; background: #fff;
          border-radius: 8px; box-shadow: 0 2px 10px rgba(0,0,0,.12); }}
  h1 {{ font-size: 1.3rem; margin: 0 0 4px; }}
  p.sub {{ margin: 0 0 20px; color: #566573; font-size: .9rem; }}
  label {{ display: block; margin: 14px 0 6px; font-size: .95rem; }}
  input {{ width: 100%; box-sizing: border-box; padding: 12px; font-size: 1rem;
           border: 1px solid #aab7b8; border-radius: 6px; }}
  button {{ width: 100%; margin-top: 22px; padding: 13px; font-size: 1.05rem; color: #fff;
            background: #1f618d; border: 0; border-radius: 6px; }}
  .error {{ margin: 12px 0 0; padding: 10px; color: #922b21; background: #fadbd8;
            border-radius: 6px; }}
</style>
</head>
<body>
<main>
  <h1>城市网格化管理平台</h1>
  <p class="sub">请使用本人账号登录</p>
  <form method="post" action="/login" autocomplete="on">
    <input type="hidden" name="next" value="{next}">
    <label for="username">用户名</label>
    <input id="username" name="username" value="{username}" autocomplete="username"
           autocapitalize="off" required>
    <label for="password">密码</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    {error}
    <button type="submit">登录</button>
  </form>
</main>
</body>
</html>
"""


def login_page(next_path: str, username: str = "", error: str | None = None) -> str:
    """The sign-in form (with the message of a failed attempt)."""
    return PAGE.format(
        next=escape(next_path),
        username=escape(username),
        error=f'<p class="error" role="alert">{escape(error)}</p>' if error else "",
    )


REFUSED = """<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>无权访问 · citygrid</title>
<style>body {{ font-family: "Noto Sans CJK SC", sans-serif; margin: 15vh auto; max-width: 360px;
padding: 0 16px; color: #1c2833; }} a, button {{ font-size: 1rem; }}</style></head>
<body>
<h1>无权访问此页面</h1>
<p>您当前以“{role}”身份登录，此页面仅供{needed}使用。</p>
<form method="post" action="/logout"><button type="submit">换个账号登录</button></form>
</body>
</html>
"""


def refused_page(role_label: str, needed: str) -> str:
    """The page shown to a signed-in user whose role the page is not for."""
    return REFUSED.format(role=escape(role_label), needed=escape(needed))


COUNTY_REFUSED = """<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>无法显示 · citygrid</title>
<style>body {{ font-family: "Noto Sans CJK SC", sans-serif; margin: 15vh auto; max-width: 360px;
padding: 0 16px; color: #1c2833; }}</style></head>
<body>
<h1>无法显示此县级行政区</h1>
<p>{message}</p>
<p><a href="?">返回本账号的县级行政区</a></p>
</body>
</html>
"""


def county_refused_page(message: str) -> str:
    """The page shown for a county that does not exist or that the account does not hold."""
    return COUNTY_REFUSED.format(message=escape(message))
