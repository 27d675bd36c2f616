"""docs/catalog is generated from the catalog and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from tzsb.catalog import catalog_pages, load_catalog

DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog"


def test_generated_pages_are_current() -> None:
    generated = catalog_pages(load_catalog())
    assert sorted(path.name for path in DOCS.glob("*.md")) == sorted(generated)
    stale = [name for name, text in generated.items() if (DOCS / name).read_text(encoding="utf-8") != text]
    assert stale == [], f"run `tzsb catalog docs` to regenerate {stale}"


def test_pages_put_chinese_names_first() -> None:
    page = catalog_pages(load_catalog())["0101.md"]
    assert page.startswith("# 0101 特种设备基础数据\n")
    assert "| 设备代码 | `EQP_CODE` | string | 21 | 是 |" in page


def test_pages_list_the_natural_keys() -> None:
    pages = catalog_pages(load_catalog())
    assert (
        "- 自然键 natural keys: `REG_CODE`（warning）; `USE_CERT_NO`（warning）; "
        "`FACTORY_NO` + `MAKE_UNIT_NAME`（warning）\n"
    ) in pages["0101.md"]
    assert "- 自然键 natural keys: —\n" in pages["0102.md"]
