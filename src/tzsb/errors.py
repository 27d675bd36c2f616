"""The error tree, and the typed faults a refusal carries.

::

    TzsbError
    ├── ExchangeError            a request the node refuses; answered with result 0000 + code
    │     code ∈ ErrorCode       E_JSON E_PARAM E_APPID E_SIGN E_REPLAY E_BUSICODE E_FORBIDDEN
    │                            E_REGION E_LIMIT E_VALIDATION E_NOTFOUND E_CONFLICT E_DISABLED
    │                            E_LOCKED E_UPSTREAM E_INTERNAL
    │     built only by the named constructors of ``tzsb.refusals`` (the one refusal table)
    ├── StoreConflict            a write collided with another on a unique key; rolled back
    ├── OperatorError            an operator's command cannot be carried out (unknown record, bad region)
    ├── LoginRefused             a console sign-in refused (unknown user, wrong password, disabled)
    ├── ConfigurationError       the node itself is misconfigured (home, settings, keys)
    ├── SecretFormatError        a signing secret its algorithm cannot use (also a ValueError)
    └── ResponseSignatureError   (client SDK) an answer whose sign does not verify

Messages are Chinese first, then English, and say what the caller should change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    UPSTREAM = "E_UPSTREAM"
    INTERNAL = "E_INTERNAL"


@dataclass(frozen=True, slots=True)
class FieldFault:
    """One rule a field breaks: ``{"field", "rule", "message"}`` in an answer."""

    field: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(frozen=True, slots=True)
class RecordFault:
    """One record's part in a refusal or in a write's warnings, by its position in the batch.

    In an answer: ``{"index", "key"}`` and, each only when set, ``errors`` / ``warnings`` (the
    rules it breaks), ``region`` (E_REGION: the region the caller sent for it) and ``source``
    (E_CONFLICT: the app that supplied the stored record).
    """

    index: int
    key: Any = None
    errors: tuple[FieldFault, ...] | None = None
    warnings: tuple[FieldFault, ...] | None = None
    region: Any = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"index": self.index, "key": self.key}
        if self.errors is not None:
            answer["errors"] = [fault.as_dict() for fault in self.errors]
        if self.warnings is not None:
            answer["warnings"] = [fault.as_dict() for fault in self.warnings]
        if self.region is not None:
            answer["region"] = self.region
        if self.source is not None:
            answer["source"] = self.source
        return answer


class TzsbError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(TzsbError):
    """The node's home, settings or keys are missing or inconsistent."""


class SecretFormatError(TzsbError, ValueError):
    """A signing secret its algorithm cannot use (SM4 needs a 128-bit key: 16 ASCII characters or 32 hex digits)."""


class LoginRefused(TzsbError):
    """A console sign-in refused: unknown user, wrong password or disabled account (one message for all)."""


class StoreConflict(TzsbError):
    """A write collided with another on a unique key (e.g. the same ``random`` claimed twice);
    its transaction was rolled back."""


class OperatorError(TzsbError):
    """An operator's command that cannot be carried out as given (an unknown record, a bad region)."""


class ResponseSignatureError(TzsbError):
    """An answer whose ``sign`` does not verify with the caller's secret (raised by the client SDK)."""


class ExchangeError(TzsbError):
    """A refused request. ``details`` become the response's ``busilist`` (e.g. validation faults).

    Build one with a named constructor of ``tzsb.refusals``, never inline: the wording lives there.
    """

    def __init__(self, code: ErrorCode, zh: str, en: str, details: Sequence[RecordFault] = ()) -> None:
        self.code = code
        self.zh = zh
        self.en = en
        self.details: tuple[RecordFault, ...] = tuple(details)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.zh} / {self.en}"
