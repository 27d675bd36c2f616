"""Opaque, tamper-proof tokens for ``_cursor`` (next page) and ``_since`` (change feed).

A token is ``base64url(payload).base64url(mac)``; the MAC (HMAC-SM3 under a key derived from the
master key) makes forged or edited tokens fail, and the payload binds a page cursor to the
business type and the conditions it was issued for.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from tzsb.errors import ErrorCode, ExchangeError

_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        mac = crypto_hmac.HMAC(self._key, hashes.SM3())
        mac.update(payload)
        return mac.finalize()[:_MAC_BYTES]

    def encode(self, payload: dict[str, Any]) -> str:
        data = orjson.dumps(payload)
        return f"{_b64(data)}.{_b64(self._mac(data))}"

    def decode(self, token: Any, parameter: str) -> dict[str, Any]:
        """The payload of a token this node issued, or ``E_PARAM`` naming ``parameter``."""
        error = ExchangeError(
            ErrorCode.PARAM,
            f"{parameter} 无效或已被篡改，请使用上一次响应返回的值",
            f"{parameter} is invalid or was altered; pass the value the previous response returned",
        )
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 1024:
            raise error
        body, mac = token.split(".")
        try:
            data, received = _unb64(body), _unb64(mac)
        except ValueError:
            raise error from None
        if not hmac.compare_digest(self._mac(data), received):
            raise error
        payload = orjson.loads(data)
        if not isinstance(payload, dict):
            raise error
        return payload
