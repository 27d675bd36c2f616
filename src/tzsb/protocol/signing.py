"""Signature rules of spec 6.5, and the algorithms a node offers.

The sign string is built from the parameters *as received*: every top-level parameter except
``sign``, leaving out those whose value is the empty string, sorted by name in ASCII order
(case-sensitive), joined as ``name=value`` with ``&``, followed by ``&key=<secret>``.
The digest of that string, in upper-case hex, is the ``sign``.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Mapping
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from tzsb.errors import SecretFormatError


class SignAlgorithm(StrEnum):
    MD5 = "MD5"
    SM4 = "SM4"
    SM3 = "SM3"
    HMAC_SM3 = "HMAC-SM3"


def sign_string(params: Mapping[str, str], secret: str) -> str:
    """The exact text that is digested: ``a=1&b=2&key=<secret>``.

    ``params`` holds the parameters as text (``busilist`` as its received or compact JSON text);
    ``sign`` and empty values are left out here, so callers may pass the whole request.
    """
    return canonical_params(params) + "&key=" + secret


def canonical_params(params: Mapping[str, str]) -> str:
    """The sorted ``name=value`` pairs joined by ``&``, without the key."""
    return "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "sign" and params[name] != "")


def sm4_key(secret: str) -> bytes:
    """The 16-byte SM4 key of a secret given as 16 characters or 32 hex digits."""
    if len(secret) == 32 and all(char in string.hexdigits for char in secret):
        return bytes.fromhex(secret)
    raw = secret.encode("utf-8")
    if len(raw) != 16 or not secret.isascii():
        raise SecretFormatError("SM4 secret must be 16 ASCII characters or 32 hex digits")
    return raw


def digest(text: str, secret: str, algorithm: SignAlgorithm) -> str:
    """The upper-case hex signature of ``text`` (the full sign string) under ``algorithm``."""
    return _digest((text.encode("utf-8"),), secret, algorithm)


def _digest(parts: tuple[bytes, ...], secret: str, algorithm: SignAlgorithm) -> str:
    """``digest`` of the concatenation of ``parts``, fed piecewise where the algorithm allows."""
    if algorithm is SignAlgorithm.MD5:
        md5 = hashlib.md5(usedforsecurity=False)
        for part in parts:
            md5.update(part)
        return md5.hexdigest().upper()
    if algorithm is SignAlgorithm.SM3:
        sm3 = hashes.Hash(hashes.SM3())
        for part in parts:
            sm3.update(part)
        return sm3.finalize().hex().upper()
    if algorithm is SignAlgorithm.HMAC_SM3:
        mac = crypto_hmac.HMAC(secret.encode("utf-8"), hashes.SM3())
        for part in parts:
            mac.update(part)
        return mac.finalize().hex().upper()
    padder = PKCS7(128).padder()
    padded = b"".join(padder.update(part) for part in parts) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(sm4_key(secret)), modes.ECB()).encryptor()  # noqa: S305 - the spec's SM4 profile is ECB
    return (encryptor.update(padded) + encryptor.finalize()).hex().upper()


def sign(params: Mapping[str, str], secret: str, algorithm: SignAlgorithm) -> str:
    """Compute the ``sign`` of a message's parameters (spec 6.5)."""
    return digest(sign_string(params, secret), secret, algorithm)


def sign_encoded(params: Mapping[str, bytes], secret: str, algorithm: SignAlgorithm) -> str:
    """``sign`` of parameters given as their UTF-8 text: a large one (an answer's ``datalist``, 65 KB
    for a page of 100 records) is digested as it was serialised, not decoded into a string, joined
    into the sign string and encoded back."""
    parts: list[bytes] = []
    for name in sorted(params):
        if name != "sign" and params[name] != b"":
            parts += (b"&" if parts else b"", name.encode("utf-8"), b"=", params[name])
    parts += (b"&key=", secret.encode("utf-8"))
    return _digest(tuple(parts), secret, algorithm)


def verify(params: Mapping[str, str], secret: str, algorithm: SignAlgorithm, received: str) -> bool:
    """Whether ``received`` is the sign of ``params``, compared in constant time."""
    return verify_canonical(canonical_params(params).encode("utf-8"), secret, algorithm, received)


def verify_canonical(canonical: bytes, secret: str, algorithm: SignAlgorithm, received: str) -> bool:
    """``verify`` for parameters already joined by ``canonical_params`` and UTF-8 encoded.

    A request is checked against each live secret of its app (rotation grace), and its canonical
    text also fingerprints it for replays: built once, it is not rebuilt for each use.
    Hex is compared upper-cased: the spec asks for upper case, and a lower-case hex sign from a
    lax client is the same signature.
    """
    if not received.isascii():
        return False  # str.upper() would turn e.g. the ligature 'ﬀ' into 'FF'
    try:
        expected = _digest((canonical, b"&key=" + secret.encode("utf-8")), secret, algorithm)
    except SecretFormatError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), received.upper().encode("ascii"))
