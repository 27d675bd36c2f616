"""The error tree: every failure a caller can see has a stable code and a bilingual message.

::

    TzsbError
    ├── ExchangeError            a request the node refuses; answered with result 0000 + code
    │     code ∈ ErrorCode       E_JSON E_PARAM E_APPID E_SIGN E_REPLAY E_BUSICODE E_FORBIDDEN
    │                            E_REGION E_LIMIT E_VALIDATION E_NOTFOUND E_CONFLICT E_DISABLED
    │                            E_LOCKED E_INTERNAL
    └── ConfigurationError       the node itself is misconfigured (home, settings, keys)

Messages are Chinese first, then English, and say what the caller should change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    JSON = "E_JSON"
    PARAM = "E_PARAM"
    APPID = "E_APPID"
    SIGN = "E_SIGN"
    REPLAY = "E_REPLAY"
    BUSICODE = "E_BUSICODE"
    FORBIDDEN = "E_FORBIDDEN"
    REGION = "E_REGION"
    LIMIT = "E_LIMIT"
    VALIDATION = "E_VALIDATION"
    NOTFOUND = "E_NOTFOUND"
    CONFLICT = "E_CONFLICT"
    DISABLED = "E_DISABLED"
    LOCKED = "E_LOCKED"
    INTERNAL = "E_INTERNAL"


class TzsbError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(TzsbError):
    """The node's home, settings or keys are missing or inconsistent."""


class ExchangeError(TzsbError):
    """A refused request. ``details`` becomes the response's ``busilist`` (e.g. validation errors)."""

    def __init__(self, code: ErrorCode, zh: str, en: str, details: list[Any] | None = None) -> None:
        self.code = code
        self.zh = zh
        self.en = en
        self.details = details if details is not None else []
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.zh} / {self.en}"
