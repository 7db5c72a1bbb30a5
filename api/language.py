"""The language of titles and code labels: the `lang` parameter, else `Accept-Language`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query

from layers.engine.schemas import DEFAULT_LANGUAGE, LANGUAGES, Lang

LANG_PATTERN = r"^([zZ][hH]|[eE][nN])(-[A-Za-z0-9]{1,8}){0,3}$"
CONTENT_LANGUAGE = {"zh": "zh-CN", "en": "en"}
SPOKEN: dict[str, Lang] = {lang: lang for lang in LANGUAGES} | {"*": DEFAULT_LANGUAGE}


def _weight(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def pick_language(accept_language: str | None) -> Lang:
    """The preferred language of an `Accept-Language` header that citygrid speaks (default zh)."""
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate((accept_language or "").split(",")):
        tag, *params = entry.split(";")
        primary = tag.strip().split("-")[0].lower()
        weight = _weight(params)
        if weight > 0 and primary in SPOKEN:
            ranked.append((-weight, position, primary))
    return SPOKEN[min(ranked)[2]] if ranked else DEFAULT_LANGUAGE


def negotiated_language(
    lang: Annotated[
        str | None,
        Query(
            pattern=LANG_PATTERN,
            description="Language of titles and code labels: zh (中文) or en; "
            "overrides Accept-Language",
        ),
    ] = None,
    accept_language: Annotated[
        str | None,
        Header(description="en gives English titles and code labels, zh (the default) Chinese"),
    ] = None,
) -> Lang:
    """The language asked for: `lang` when given, else the best of `Accept-Language`."""
    if lang is not None:
        return pick_language(lang)
    return pick_language(accept_language)


def language_headers(lang: Lang) -> dict[str, str]:
    """Headers of an answer whose words depend on the language asked for."""
    return {"Content-Language": CONTENT_LANGUAGE[lang], "Vary": "Accept-Language"}
