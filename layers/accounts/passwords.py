"""Password rules: long enough, not a common or easily guessed one, not the user's own name.

Guessability is estimated by zxcvbn (frequency lists of leaked passwords, words, names, keyboard
patterns, dates and repeats), told the user's name so that variations of it count as guessed.
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

from layers.errors import AccountError

MIN_LENGTH = 8
# zxcvbn's 0-4 scale; 3 = "safely unguessable" (about 10^10 guesses), enough against offline
# guessing of a leaked argon2 hash, not only against the throttled sign-in form.
MIN_SCORE = 3
MAX_CHECKED = 72  # zxcvbn's own limit; a longer password is judged by its first 72 characters


def _weak(reason: str, message_en: str, message_zh: str) -> AccountError:
    return AccountError(message_en, message_zh, code="weak_password", reason=reason)


def _name_parts(names: tuple[str, ...]) -> list[str]:
    parts = {n.lower() for n in names if n}
    for name in list(parts):
        parts.update(p for p in re.split(r"[._\-\s]+", name) if len(p) >= 3)
    return sorted(parts)


def check(password: str, *names: str) -> None:
    """Refuse a password that is short, common or guessable, or holds one of `names`."""
    if len(password) < MIN_LENGTH:
        raise _weak(
            "too_short",
            f"A password needs at least {MIN_LENGTH} characters.",
            f"密码至少需要 {MIN_LENGTH} 个字符。",
        )
    lowered = password.lower()
    own = [n for n in _name_parts(names) if len(n) >= 3]
    if any(n in lowered or n[::-1] in lowered for n in own):
        raise _weak(
            "contains_name",
            "A password must not contain the user name.",
            "密码中不能包含用户名或姓名。",
        )
    if zxcvbn(password[:MAX_CHECKED], user_inputs=own)["score"] < MIN_SCORE:
        raise _weak(
            "too_common",
            "This password is too common or too easy to guess (a common password, a word with "
            "digits, a keyboard pattern, a date or repeats); use a longer one of unrelated words.",
            "该密码过于常见或容易猜到（常用密码、单词加数字、键盘序列、日期或重复字符等），"
            "请使用更长的、由不相关词语组成的密码。",
        )
