"""JSON sent by clients: bounded nesting, and only text that PostgreSQL can store."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

MAX_DEPTH = 32  # a GeoJSON multipolygon feature nests 6 deep; nothing sent here needs more
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """JSON that is not read: not JSON, nested too deep, or holding text that cannot be stored."""

    def __init__(self, code: str, message_en: str, message_zh: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh


def too_deep() -> JsonRefused:
    """The refusal of a document nested deeper than MAX_DEPTH."""
    return JsonRefused(
        "json_too_deep",
        f"the JSON is nested deeper than {MAX_DEPTH} levels",
        f"JSON 嵌套超过 {MAX_DEPTH} 层",
    )


def depth(value: Any) -> int:
    """How deep arrays and objects nest in `value` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            level += 1
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level) for child in node)
    return deepest


def strings(value: Any) -> Iterator[tuple[str, bool]]:
    """Every string in a JSON value and whether it is a member's name, without recursion."""
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, is_name = stack.pop()
        if isinstance(node, str):
            yield node, is_name
        elif isinstance(node, dict):
            stack.extend((name, True) for name in node)
            stack.extend((member, False) for member in node.values())
        elif isinstance(node, list):
            stack.extend((item, False) for item in node)


def unstorable_text(value: Any) -> JsonRefused | None:
    """Why text in `value` cannot be stored (a NUL, a lone UTF-16 surrogate), or None."""
    for text, is_name in strings(value):
        if is_name and ("\x00" in text or _SURROGATE.search(text)):
            return JsonRefused(
                "unstorable_name",
                "a member name holds a NUL character or a lone UTF-16 surrogate",
                "成员名称中含有空字符或孤立的 UTF-16 代理码元",
            )
        if "\x00" in text:
            return JsonRefused(
                "nul_character",
                "text holds a NUL character (\\u0000)",
                "文本中含有空字符（\\u0000）",
            )
        if _SURROGATE.search(text):
            return JsonRefused(
                "lone_surrogate",
                "text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character",
                "文本中含有孤立的 UTF-16 代理码元（\\ud800-\\udfff），不是有效字符",
            )
    return None


def check(value: Any) -> Any:
    """`value` if it nests at most MAX_DEPTH deep and all its text can be stored."""
    if depth(value) > MAX_DEPTH:
        raise too_deep()
    refused = unstorable_text(value)
    if refused is not None:
        raise refused
    return value


def loads(raw: str | bytes, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """Parse client JSON; every failure is a JsonRefused with a bilingual message."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=parse_constant)
    except RecursionError:
        raise too_deep() from None
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, JsonRefused):
            raise
        raise JsonRefused(
            "body_not_json", f"not JSON ({exc})", f"不是有效的 JSON（{exc}）"
        ) from None
    return check(value)
