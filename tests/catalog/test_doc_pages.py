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
    assert "| 设备代码 | `EQP_CODE` | string | 20 | 是 |" in page
