"""Code tables the rules check against: the 2014 《特种设备目录》 and GB/T 2260 divisions."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from stdnum import numdb


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    code: str
    name: str
    level: str  # 种类 / 类别 / 品种
    parent: str


@cache
def equipment_catalogue() -> dict[str, CatalogueEntry]:
    """The codes of the 2014 《特种设备目录》 (种类 / 类别 / 品种), by code."""
    text = resources.files("tzsb.catalog").joinpath("data", "equipment-catalogue-2014.csv").read_text("utf-8")
    return {
        row["code"]: CatalogueEntry(row["code"], row["name"], row["level"], row["parent"])
        for row in csv.DictReader(io.StringIO(text))
    }


@cache
def _divisions() -> numdb.NumDB:
    return numdb.get("cn/loc")


@lru_cache(maxsize=16384)
def division_name(code: str) -> str | None:
    """The name of a GB/T 2260 division (current or abolished), or None when the code never existed.

    The table (python-stdnum's, from the published code lists) holds counties and the city-level
    ``xxxx00`` entries; a province ``xx0000`` exists when the table knows the province.
    """
    if len(code) != 6 or not code.isdigit() or not code.isascii():
        return None
    info: dict[str, str] = {}
    for _part, properties in _divisions().info(code):
        info.update(properties)
    if code.endswith("0000"):
        return info.get("province")
    county = info.get("county")
    if county is None:
        return None
    # Abolished codes carry their validity, e.g. "[-2010]崇文区"; real data still uses them.
    return county.split("]", 1)[-1]
