"""Chinese names for the demo city's towns, communities, people and companies."""

from __future__ import annotations

import numpy as np

COUNTY_SEAT = "汇龙镇"
TOWNS = [COUNTY_SEAT, "吕四港镇", "王鲍镇", "北新镇", "南阳镇", "近海镇", "寅阳镇"]

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余杜叶程魏苏吕丁沈姜范"
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红云飞鹏辉斌宇浩凯健俊帆琳晨欣怡佳"
)
_PLACE = [
    "紫薇",
    "人民",
    "东方",
    "和平",
    "城北",
    "城南",
    "城东",
    "城西",
    "公园",
    "新港",
    "海滨",
    "春晖",
    "长江",
    "建设",
    "文峰",
    "花园",
    "南苑",
    "北苑",
    "永和",
    "惠丰",
    "兴垦",
    "合作",
    "东海",
    "向阳",
    "丰乐",
    "聚南",
    "天汾",
    "圆陀",
    "滨海",
    "黄海",
    "江海",
    "金沙",
    "银洲",
    "龙潭",
    "鹤城",
    "新安",
    "民主",
    "团结",
    "胜利",
    "红星",
    "光明",
    "幸福",
    "同心",
    "富民",
    "启秀",
    "百花",
    "万福",
    "星辰",
    "锦绣",
    "吉祥",
    "紫东",
    "汇东",
    "汇西",
    "旭日",
    "长兴",
    "顺达",
    "晨光",
    "桃园",
    "荷花",
    "月亮湾",
    "渔港",
    "盐场",
    "灯塔",
    "港西",
    "港东",
    "海鸥",
    "海复",
    "久隆",
]
_TRADES = ["建设工程", "建筑安装", "市政工程", "水利工程", "园林绿化", "路桥工程", "土石方工程"]
_SHOPS = [
    "超市",
    "饭店",
    "面馆",
    "烟酒店",
    "药房",
    "五金店",
    "服装店",
    "理发店",
    "茶叶店",
    "手机店",
    "水果店",
]


class NameBook:
    """Deterministic name picker: the same seed gives the same names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._used_places: set[str] = set()

    def person(self) -> str:
        """A two- or three-character personal name."""
        surname = _SURNAMES[self.rng.integers(len(_SURNAMES))]
        n = 1 if self.rng.random() < 0.3 else 2
        return surname + "".join(_GIVEN[self.rng.integers(len(_GIVEN))] for _ in range(n))

    def place(self) -> str:
        """A place word not used before in this book (numbered once the list runs out)."""
        free = [p for p in _PLACE if p not in self._used_places]
        word = free[self.rng.integers(len(free))] if free else f"新{len(self._used_places) + 1}"
        self._used_places.add(word)
        return word

    def phone(self) -> str:
        """A landline number with the 启东 area code."""
        return f"0513-83{self.rng.integers(100000, 999999)}"

    def mobile(self) -> str:
        """A mobile number."""
        return f"1{self.rng.choice([38, 39, 51, 58, 77, 88])}{self.rng.integers(10**7, 10**8)}"

    def company(self, town: str) -> str:
        """A contractor's company name."""
        trade = _TRADES[self.rng.integers(len(_TRADES))]
        return f"启东市{self.place_or_town(town)}{trade}有限公司"

    def shop(self) -> str:
        """A shop's name."""
        return f"{self.person()[0]}记{_SHOPS[self.rng.integers(len(_SHOPS))]}"

    def place_or_town(self, town: str) -> str:
        """A place word for a company: the town's name or a free-standing word."""
        word = _PLACE[self.rng.integers(len(_PLACE))]
        return town.removesuffix("镇").removesuffix("港") if self.rng.random() < 0.4 else word
