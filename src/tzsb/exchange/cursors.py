"""Opaque, tamper-proof tokens for ``_cursor`` (next page) and ``_since`` (change feed).

A token is ``base64url(nonce | SM4-GCM(payload) | tag)`` under a key derived from the master key:
forged or edited tokens fail, and the payload — which holds the last key of a page, possibly a
sensitive one such as an ID number — cannot be read. The payload binds a page cursor to the
business type and the conditions it was issued for.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tzsb import refusals

_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_NONCE = 12
_TAG = 16


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key[:16]

    def encode(self, payload: dict[str, Any]) -> str:
        nonce = secrets.token_bytes(_NONCE)
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        sealed = encryptor.update(orjson.dumps(payload)) + encryptor.finalize()
        return _b64(nonce + sealed + encryptor.tag)

    def decode(self, token: Any, parameter: str) -> dict[str, Any]:
        """The payload of a token this node issued, or ``E_PARAM`` naming ``parameter``."""
        error = refusals.cursor_invalid(parameter)
        if not isinstance(token, str) or not token.isascii() or len(token) > 2048:
            raise error
        try:
            raw = _unb64(token)
        except ValueError:
            raise error from None
        if len(raw) < _NONCE + _TAG:
            raise error
        nonce, sealed, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        try:
            payload = orjson.loads(decryptor.update(sealed) + decryptor.finalize())
        except (InvalidTag, orjson.JSONDecodeError):
            raise error from None
        if not isinstance(payload, dict):
            raise error
        return payload
