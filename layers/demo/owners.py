"""Who answers for the demo city's components: the departments, utilities and contractors of 启东
in the unit directory, and per component subclass its 主管部门, owners and maintainers.

The names are fictional but shaped like the real ones; the credit codes are made up with a valid
GB 32100 check digit and are nobody's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from layers.cases.units import NewUnit, credit_check_digit

CITY = "启东市"


@dataclass(frozen=True)
class DemoUnit:
    """A unit of the demo directory: name, type and the registration authority's prefix."""

    name: str
    type: str
    prefix: str  # 11 机关, 12 事业单位, 91 企业
    contact: str


UNITS = (
    DemoUnit("启东市城市管理局", "department", "11", "沈建国"),
    DemoUnit("启东市住房和城乡建设局", "department", "11", "黄志红"),
    DemoUnit("启东市水务局", "department", "11", "陆海平"),
    DemoUnit("启东市工业和信息化局", "department", "11", "施晓东"),
    DemoUnit("启东市交通运输局", "department", "11", "龚卫国"),
    DemoUnit("启东市公安局交通警察大队", "department", "11", "倪俊"),
    DemoUnit("启东市民政局", "department", "11", "茅丽华"),
    DemoUnit("启东市消防救援大队", "department", "11", "蔡斌"),
    DemoUnit("启东市自来水有限公司", "enterprise", "91", "顾晓峰"),
    DemoUnit("启东市排水管理处", "department", "12", "陈海燕"),
    DemoUnit("国网江苏省电力有限公司启东市供电分公司", "enterprise", "91", "张明"),
    DemoUnit("启东市路灯管理所", "department", "12", "袁刚"),
    DemoUnit("中国电信股份有限公司启东分公司", "enterprise", "91", "杨帆"),
    DemoUnit("中国移动通信集团江苏有限公司启东分公司", "enterprise", "91", "刘洋"),
    DemoUnit("中国联合网络通信有限公司启东市分公司", "enterprise", "91", "徐静"),
    DemoUnit("启东港华燃气有限公司", "enterprise", "91", "朱涛"),
    DemoUnit("启东市环境卫生管理处", "department", "12", "季红梅"),
    DemoUnit("启东市园林管理处", "department", "12", "范志强"),
    DemoUnit("启东市公共交通有限公司", "enterprise", "91", "王勇"),
    DemoUnit("启东市明光照明工程有限公司", "enterprise", "91", "邱杰"),
    DemoUnit("启东市绿源园林养护有限公司", "enterprise", "91", "曹艳"),
    DemoUnit("启东市洁城环境服务有限公司", "enterprise", "91", "葛娟"),
)

# subclass name: (主管部门, ((owner, share), …), {owner: ((maintainer, share), …)}); an owner
# without maintainers maintains what it owns.
Shares = tuple[tuple[str, float], ...]
Ownership = tuple[str, Shares, dict[str, Shares]]
TELECOM: Shares = (
    ("中国电信股份有限公司启东分公司", 0.45),
    ("中国移动通信集团江苏有限公司启东分公司", 0.35),
    ("中国联合网络通信有限公司启东市分公司", 0.20),
)
WATER = "启东市自来水有限公司"
DRAINAGE = "启东市排水管理处"
POWER = "国网江苏省电力有限公司启东市供电分公司"
LIGHTS = "启东市路灯管理所"
SANITATION = "启东市环境卫生管理处"
PARKS = "启东市园林管理处"
OUTSOURCED_LIGHTS: dict[str, Shares] = {
    LIGHTS: ((LIGHTS, 0.6), ("启东市明光照明工程有限公司", 0.4))
}
OUTSOURCED_SANITATION: dict[str, Shares] = {
    SANITATION: ((SANITATION, 0.5), ("启东市洁城环境服务有限公司", 0.5))
}
OUTSOURCED_TREES: dict[str, Shares] = {PARKS: ((PARKS, 0.55), ("启东市绿源园林养护有限公司", 0.45))}

OWNERSHIP: dict[str, Ownership] = {
    "上水井盖": ("启东市水务局", ((WATER, 1.0),), {}),
    "污水井盖": ("启东市水务局", ((DRAINAGE, 1.0),), {}),
    "雨水井盖": ("启东市水务局", ((DRAINAGE, 1.0),), {}),
    "雨水箅子": ("启东市水务局", ((DRAINAGE, 1.0),), {}),
    "电力井盖": ("启东市工业和信息化局", ((POWER, 1.0),), {}),
    "路灯井盖": ("启东市城市管理局", ((LIGHTS, 1.0),), OUTSOURCED_LIGHTS),
    "通信井盖": ("启东市工业和信息化局", TELECOM, {}),
    "燃气井盖": ("启东市住房和城乡建设局", (("启东港华燃气有限公司", 1.0),), {}),
    "消防栓": ("启东市消防救援大队", ((WATER, 1.0),), {}),
    "路灯": ("启东市城市管理局", ((LIGHTS, 1.0),), OUTSOURCED_LIGHTS),
    "电杆": ("启东市工业和信息化局", ((POWER, 1.0),), {}),
    "通信交接箱": ("启东市工业和信息化局", TELECOM, {}),
    "果皮箱": ("启东市城市管理局", ((SANITATION, 1.0),), OUTSOURCED_SANITATION),
    "公共厕所": ("启东市城市管理局", ((SANITATION, 1.0),), OUTSOURCED_SANITATION),
    "行道树": ("启东市住房和城乡建设局", ((PARKS, 1.0),), OUTSOURCED_TREES),
    "公交站亭": ("启东市交通运输局", (("启东市公共交通有限公司", 1.0),), {}),
    "交通标志牌": ("启东市公安局交通警察大队", (("启东市公安局交通警察大队", 1.0),), {}),
    "交通信号灯": ("启东市公安局交通警察大队", (("启东市公安局交通警察大队", 1.0),), {}),
    "路名牌": ("启东市民政局", (("启东市民政局", 1.0),), {}),
    "护栏": ("启东市住房和城乡建设局", (("启东市城市管理局", 1.0),), {}),
    "绿地": ("启东市住房和城乡建设局", ((PARKS, 1.0),), OUTSOURCED_TREES),
}


def credit_code(unit: DemoUnit, adcode: str) -> str:
    """A made-up 统一社会信用代码 for `unit`, the same every time, with a valid check digit."""
    digest = int(hashlib.sha256(unit.name.encode()).hexdigest(), 16)
    first17 = f"{unit.prefix}{adcode}{digest % 10**9:09d}"
    return first17 + credit_check_digit(first17)


def phone(unit: DemoUnit) -> str:
    """A made-up 启东 landline for `unit`."""
    digest = int(hashlib.sha256(unit.name.encode()).hexdigest(), 16)
    return f"0513-8{digest % 10**7:07d}"


def directory(adcode: str) -> list[NewUnit]:
    """The demo units as directory entries of county `adcode`."""
    return [NewUnit(u.name, u.type, credit_code(u, adcode), u.contact, phone(u)) for u in UNITS]
