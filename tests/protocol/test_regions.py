"""GB/T 2260 region codes as scopes: national 100000 ⊃ province ⊃ city ⊃ county."""

from __future__ import annotations

import pytest

from tzsb.protocol.regions import NATIONAL, covers, is_region_code, region_prefix


@pytest.mark.parametrize(
    ("code", "prefix"),
    [
        ("100000", ""),  # national
        ("330000", "33"),  # province
        ("110000", "11"),
        ("330100", "3301"),  # city
        ("419000", "4190"),
        ("330106", "330106"),  # county
        ("419001", "419001"),
        ("110101", "110101"),
    ],
)
def test_region_prefix(code: str, prefix: str) -> None:
    assert region_prefix(code) == prefix


def test_national_constant() -> None:
    assert NATIONAL == "100000"


@pytest.mark.parametrize(
    ("scope", "code", "expected"),
    [
        # national covers everything, itself included
        ("100000", "100000", True),
        ("100000", "330000", True),
        ("100000", "330100", True),
        ("100000", "330106", True),
        ("100000", "650000", True),
        # province
        ("330000", "330000", True),
        ("330000", "330100", True),
        ("330000", "330106", True),
        ("330000", "330200", True),
        ("330000", "340000", False),
        ("330000", "340100", False),
        ("330000", "100000", False),
        # city
        ("330100", "330100", True),
        ("330100", "330106", True),
        ("330100", "330000", False),
        ("330100", "330200", False),
        ("330100", "330206", False),
        ("330100", "331000", False),
        ("330100", "100000", False),
        # county
        ("330106", "330106", True),
        ("330106", "330108", False),
        ("330106", "330100", False),
        ("330106", "330000", False),
        ("330106", "100000", False),
        # province-administered county-level units (41 90 xx)
        ("410000", "419001", True),
        ("419000", "419001", True),
        ("410100", "419001", False),
    ],
)
def test_covers(scope: str, code: str, expected: bool) -> None:
    assert covers(scope, code) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("330106", True),
        ("100000", True),
        ("33010", False),
        ("3301060", False),
        ("33010a", False),
        ("３３０１０６", False),
        ("330106\n", False),
        ("", False),
    ],
)
def test_is_region_code(code: str, expected: bool) -> None:
    assert is_region_code(code) is expected
