"""Reference data of the sample world: vehicle models, regions, destination countries,
enterprise names and the trade's figures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    brand: str
    model: str
    wmi: str  # world manufacturer identifier (VIN positions 1-3)
    hs_code: str
    goods: str  # displacement and body type, as customs' 商品名称 carries them
    fob_usd: int  # typical FOB value of a three-year-old vehicle
    share: float  # share of exports


MODELS = (
    Model("比亚迪", "秦PLUS", "LGX", "87036012", "1.5L插电混动轿车", 9_000, 14),
    Model("比亚迪", "宋PLUS", "LGX", "87038000", "纯电动SUV", 12_000, 8),
    Model("吉利", "帝豪", "L6T", "87032342", "1.5L轿车", 6_000, 12),
    Model("长安", "CS75", "LS5", "87032343", "1.5T SUV", 8_000, 12),
    Model("奇瑞", "瑞虎8", "LVV", "87032362", "1.6T SUV", 9_500, 10),
    Model("长城", "哈弗H6", "LGW", "87032343", "1.5T SUV", 8_500, 14),
    Model("大众", "朗逸", "LSV", "87032342", "1.5L轿车", 7_000, 10),
    Model("丰田", "凯美瑞", "LVG", "87032362", "2.0L轿车", 14_000, 8),
    Model("五菱", "宏光MINIEV", "LZW", "8703800090", "纯电动微型车", 3_000, 6),
    Model("长城", "风骏5", "LGW", "87042100", "2.0T柴油皮卡", 7_000, 4),
    Model("宇通", "ZK6122", "LZY", "87021091", "柴油大客车", 40_000, 2),
)


@dataclass(frozen=True)
class Region:
    city: str
    plate: str  # 号牌 prefix
    code: str  # GB/T 2260 division code
    port: str  # customs district of the export port used from there


REGIONS = (
    Region("天津", "津A", "120116", "0202"),
    Region("上海", "沪A", "310115", "2248"),
    Region("广州", "粤A", "440106", "5141"),
    Region("深圳", "粤B", "440304", "5304"),
    Region("青岛", "鲁B", "370211", "4218"),
    Region("大连", "辽B", "210211", "0908"),
    Region("重庆", "渝A", "500112", "8012"),
    Region("成都", "川A", "510107", "7901"),
    Region("西安", "陕A", "610113", "9001"),
    Region("郑州", "豫A", "410105", "4601"),
    Region("乌鲁木齐", "新A", "650104", "7803"),
)
COUNTRIES = ("RUS", "KAZ", "ARE", "UZB", "KGZ", "TJK", "AZE", "GEO", "MNG", "SAU")
COUNTRY_SHARES = (30, 18, 14, 10, 8, 5, 5, 4, 3, 3)
NAME_WORDS = (
    "恒通",
    "远航",
    "丝路",
    "华信",
    "海川",
    "东方",
    "中汇",
    "宏达",
    "博远",
    "鑫源",
    "安泰",
    "长风",
    "瑞丰",
    "金桥",
    "昌盛",
    "新程",
    "联众",
    "盛世",
    "天成",
    "聚力",
)


NAME_SUFFIXES = (
    "汽车进出口有限公司",
    "国际贸易有限公司",
    "二手车出口有限公司",
    "供应链管理有限公司",
    "汽车服务有限公司",
)
REFUND_CLASSES = ("1", "2", "3", "4")
REFUND_CLASS_SHARES = (30, 40, 25, 5)
CNY_PER_USD = 7.1
REFUND_RATE = 0.13  # VAT refunded on the FOB value
LICENCE_VALID_DAYS = 180
LICENCE_BATCH = 20  # vehicles per licence and HS code (ICD §3)
DECLARATION_BATCH = 20  # items per declaration
