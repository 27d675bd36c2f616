"""The node master key, and app secrets encrypted under it with SM4-GCM.

The master key never enters the database: it lives in ``<home>/master.key`` (mode 0600) or in
the ``TZSB_MASTER_KEY`` environment variable (32 hex digits). A stolen database alone yields no
usable secret.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tzsb.errors import ConfigurationError

_VERSION: Final = b"\x01"
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


class MasterKey:
    """A 16-byte SM4 key. Its repr never shows the key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ConfigurationError("the master key must be 16 bytes (32 hex digits)")
        self._key = key

    def __repr__(self) -> str:
        return "MasterKey('**********')"

    @classmethod
    def from_hex(cls, text: str) -> MasterKey:
        try:
            return cls(bytes.fromhex(text.strip()))
        except ValueError:
            raise ConfigurationError("the master key must be 32 hex digits") from None

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(16))

    def write(self, path: Path) -> None:
        """Write the key to a new file readable by the owner only; never overwrites."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self._key.hex() + "\n")

    @classmethod
    def read(cls, path: Path) -> MasterKey:
        try:
            return cls.from_hex(path.read_text())
        except FileNotFoundError:
            raise ConfigurationError(f"master key file {path} not found; run `tzsb init` first") from None

    def derive(self, label: str) -> bytes:
        """A 32-byte sub-key for one purpose (HMAC-SM3 of ``label``), so no two uses share a key."""
        mac = hmac.HMAC(self._key, hashes.SM3())
        mac.update(label.encode("utf-8"))
        return mac.finalize()

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """SM4-GCM; ``context`` (e.g. the appid) is authenticated, so a ciphertext cannot be moved."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(context.encode("utf-8"))
        body = encryptor.update(plaintext.encode("utf-8")) + encryptor.finalize()
        return _VERSION + nonce + body + encryptor.tag

    def decrypt(self, sealed: bytes, context: str) -> str:
        if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES or sealed[:1] != _VERSION:
            raise ConfigurationError("an encrypted secret is malformed")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        body, tag = sealed[1 + _NONCE_BYTES : -_TAG_BYTES], sealed[-_TAG_BYTES:]
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(context.encode("utf-8"))
        try:
            return (decryptor.update(body) + decryptor.finalize()).decode("utf-8")
        except InvalidTag:
            raise ConfigurationError(
                "an app secret does not decrypt under this master key; is TZSB_MASTER_KEY or master.key the "
                "one this database was created with?"
            ) from None
