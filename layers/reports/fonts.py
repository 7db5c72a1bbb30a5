"""The CJK font every chart and PDF is drawn with: named by a setting, else found by fontconfig.

A font without Chinese glyphs would draw empty boxes (tofu): rather than that, a report fails with
`CjkFontMissing`. The PDF embeds the font, so it must have TrueType outlines (reportlab cannot embed
CFF-flavoured OpenType such as Noto CJK); fonts-wqy-microhei and fonts-wqy-zenhei qualify.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from layers.errors import SetupError

PROBE = "城管通报扬尘"  # characters every report prints
FONT_PACKAGE = "fonts-wqy-microhei"


class CjkFontMissing(SetupError):
    """No font with Chinese glyphs and TrueType outlines could be found or read."""

    code = "cjk_font_missing"


@dataclass(frozen=True)
class CjkFont:
    """A font file (and the face inside a collection) that draws Chinese."""

    path: Path
    index: int = 0


def missing(detail_en: str, detail_zh: str) -> CjkFontMissing:
    """The error of a report that would have no Chinese font."""
    return CjkFontMissing(
        f"{detail_en} Install a Chinese TrueType font (apt-get install {FONT_PACKAGE}) or name "
        "one in CITYGRID_REPORT_FONT.",
        f"{detail_zh}请安装中文 TrueType 字体（apt-get install {FONT_PACKAGE}），"
        "或用 CITYGRID_REPORT_FONT 指定字体文件。",
    )


def _candidates() -> list[CjkFont]:
    """Fontconfig's Chinese TrueType faces, regular ones first."""
    if shutil.which("fc-list") is None:
        return []
    listed = subprocess.run(
        ["fc-list", ":lang=zh:fontformat=TrueType", "file", "index", "style"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout
    found: list[tuple[int, str, CjkFont]] = []
    for line in listed.splitlines():
        path, _, rest = line.partition(":")
        index = next((int(p.split("=")[1]) for p in rest.split(":") if p.startswith("index=")), 0)
        regular = 0 if "Regular" in rest or "style=" not in rest else 1
        found.append((regular, path, CjkFont(Path(path.strip()), index)))
    return [font for _, _, font in sorted(found, key=lambda f: (f[0], f[1], f[2].index))]


def _draws_chinese(font: CjkFont) -> bool:
    """Whether reportlab can embed the face and it has a glyph for every probe character."""
    from reportlab.pdfbase.ttfonts import TTFont

    try:
        face = TTFont("probe", str(font.path), subfontIndex=font.index)
    except Exception:  # any unreadable or CFF-outlined file is simply not usable
        return False
    return all(ord(ch) in face.face.charToGlyph for ch in PROBE)


@lru_cache(maxsize=8)
def find(setting: Path | None = None) -> CjkFont:
    """The font named by the setting (it must draw Chinese), else the first fontconfig finds."""
    if setting is not None:
        font = CjkFont(setting)
        if not setting.is_file() or not _draws_chinese(font):
            raise missing(
                f"CITYGRID_REPORT_FONT={setting} is not a readable TrueType font with Chinese "
                "glyphs.",
                f"CITYGRID_REPORT_FONT={setting} 不是可读取的含中文字形的 TrueType 字体。",
            )
        return font
    for font in _candidates():
        if _draws_chinese(font):
            return font
    raise missing(
        "No Chinese TrueType font is installed: the bulletins cannot be drawn.",
        "未安装中文 TrueType 字体，无法生成通报。",
    )
