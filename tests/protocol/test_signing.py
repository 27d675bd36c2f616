"""Spec 6.5 signing: the sign string, the four algorithms, published worked examples, properties."""

from __future__ import annotations

import hashlib
import hmac
import string
from typing import Final

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from tzsb.protocol.signing import (
    SecretFormatError,
    SignAlgorithm,
    canonical_params,
    digest,
    sign,
    sign_encoded,
    sign_string,
    sm4_key,
    verify,
)

# --------------------------------------------------------------------------------------------
# Worked examples (copied into the docs). Every expected sign was derived once, outside tzsb:
#   MD5       printf '%s' "$S" | md5sum
#   SM3       printf '%s' "$S" | openssl dgst -sm3
#   HMAC-SM3  printf '%s' "$S" | openssl dgst -sm3 -hmac 0123456789abcdef0123456789abcdef
#   SM4       $S PKCS#7-padded by hand to 176 bytes, then
#             openssl enc -sm4-ecb -K 0123456789abcdef0123456789abcdef -nopad
# and cross-checked with hashlib / hmac / cryptography (see test_worked_example_independent).
# --------------------------------------------------------------------------------------------

WORKED_SECRET: Final = "0123456789abcdef0123456789abcdef"
WORKED_PARAMS: Final[dict[str, str]] = {
    "appid": "hz-city",
    "busicode": "140101",
    "action": "04",
    "busilist": '[{"EQP_CODE":"31103301052014080025"}]',
    "random": "b7a8c6e2-5d4f-4c1a-9e3b-2f6d8a0c1e47",
}
WORKED_SIGN_STRING: Final = (
    'action=04&appid=hz-city&busicode=140101&busilist=[{"EQP_CODE":"31103301052014080025"}]'
    "&random=b7a8c6e2-5d4f-4c1a-9e3b-2f6d8a0c1e47&key=0123456789abcdef0123456789abcdef"
)

#: (algorithm, sign string, sign) — one published example per algorithm.
WORKED_EXAMPLES: Final[tuple[tuple[SignAlgorithm, str, str], ...]] = (
    (SignAlgorithm.MD5, WORKED_SIGN_STRING, "35D3BC19BF65F89C691B77BC5A96C598"),
    (
        SignAlgorithm.SM4,
        WORKED_SIGN_STRING,
        "DC6049874F42315E5DCDBEEA1B1ED659E7921110F5495ABE565942FE115AADF77C32313CE13BAFA3C19C9465D47017DB"
        "878921A9D164A8ADD0C635062244BDD617D60AF7BBDB90F9421492909940A6907CF726D7A5E0E7E1B997C46FF9024F12"
        "CEB4669C3D668A78E8E89564FFED6A1848C5782E035BCF0A1C75494BF6033961C145A1B1A6D6E4B7E8E52C58B9CB3881"
        "05F09830C600C47B14D5CD8633E606209ADCDA4F1013E71D4277278922D771A3",
    ),
    (SignAlgorithm.SM3, WORKED_SIGN_STRING, "D1A5449B60CFEF75BAD3C05AC8569A746CDC589BB6D7C37A975BE8B7A8335D53"),
    (SignAlgorithm.HMAC_SM3, WORKED_SIGN_STRING, "96BC850474E7CB1D3B9B5972B67B2618DC3355784DCD1D9D3B31AC96389F2E48"),
)

ALGORITHMS: Final = tuple(SignAlgorithm)


def independent_sign(text: str, secret: str, algorithm: SignAlgorithm) -> str:
    """The sign of a full sign string, computed without tzsb (stdlib hashlib/hmac, raw SM4-ECB)."""
    data = text.encode("utf-8")
    if algorithm is SignAlgorithm.MD5:
        return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
    if algorithm is SignAlgorithm.SM3:
        return hashlib.new("sm3", data).hexdigest().upper()
    if algorithm is SignAlgorithm.HMAC_SM3:
        return hmac.new(secret.encode("utf-8"), data, "sm3").hexdigest().upper()
    key = bytes.fromhex(secret) if len(secret) == 32 else secret.encode("ascii")
    pad = 16 - len(data) % 16
    padded = data + bytes([pad]) * pad
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - the spec's SM4 profile
    return (encryptor.update(padded) + encryptor.finalize()).hex().upper()


# ------------------------------------------------------------------ the sign string rule


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"b": "2", "a": "1"}, "a=1&b=2&key=K"),
        ({"a": "1", "sign": "ABCDEF"}, "a=1&key=K"),
        ({"a": "1", "b": "", "c": "3"}, "a=1&c=3&key=K"),
        ({"a": " ", "b": "0"}, "a= &b=0&key=K"),
        # ASCII order is case-sensitive: upper case (and '_') sort before lower case.
        ({"a": "1", "B": "2", "_": "3", "Z": "4", "A1": "5"}, "A1=5&B=2&Z=4&_=3&a=1&key=K"),
        ({"appid": "x", "action": "01", "basicode": "140101"}, "action=01&appid=x&basicode=140101&key=K"),
        # Values go in as received: no escaping, no trimming.
        ({"busilist": '[{"N":"杭州 & 西湖=1"}]'}, 'busilist=[{"N":"杭州 & 西湖=1"}]&key=K'),
    ],
)
def test_sign_string_rule(params: dict[str, str], expected: str) -> None:
    assert sign_string(params, "K") == expected
    assert canonical_params(params) == expected.removesuffix("&key=K")


def test_sign_string_of_worked_example() -> None:
    assert sign_string(WORKED_PARAMS, WORKED_SECRET) == WORKED_SIGN_STRING
    assert sign_string({**WORKED_PARAMS, "sign": "WHATEVER"}, WORKED_SECRET) == WORKED_SIGN_STRING


def test_empty_parameter_value_is_left_out_of_the_sign() -> None:
    with_empty = {**WORKED_PARAMS, "extra": ""}
    for algorithm in ALGORITHMS:
        assert sign(with_empty, WORKED_SECRET, algorithm) == sign(WORKED_PARAMS, WORKED_SECRET, algorithm)


# ------------------------------------------------------------------ worked examples


@pytest.mark.parametrize(("algorithm", "expected_text", "expected_sign"), WORKED_EXAMPLES)
def test_worked_example(algorithm: SignAlgorithm, expected_text: str, expected_sign: str) -> None:
    assert sign_string(WORKED_PARAMS, WORKED_SECRET) == expected_text
    assert digest(expected_text, WORKED_SECRET, algorithm) == expected_sign
    assert sign(WORKED_PARAMS, WORKED_SECRET, algorithm) == expected_sign
    assert verify(WORKED_PARAMS, WORKED_SECRET, algorithm, expected_sign)


@pytest.mark.parametrize(("algorithm", "expected_text", "expected_sign"), WORKED_EXAMPLES)
def test_worked_example_independent(algorithm: SignAlgorithm, expected_text: str, expected_sign: str) -> None:
    assert independent_sign(expected_text, WORKED_SECRET, algorithm) == expected_sign


def test_worked_examples_cover_every_algorithm() -> None:
    assert [row[0] for row in WORKED_EXAMPLES] == list(SignAlgorithm)
    assert len({row[2] for row in WORKED_EXAMPLES}) == len(WORKED_EXAMPLES)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sign_is_upper_case_hex(algorithm: SignAlgorithm) -> None:
    signature = sign({"a": "1"}, WORKED_SECRET, algorithm)
    assert signature
    assert set(signature) <= set("0123456789ABCDEF")


# ------------------------------------------------------------------ primitives (known answers)


def test_sm3_known_answer() -> None:
    expected = "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"
    assert digest("abc", "ignored", SignAlgorithm.SM3) == expected
    assert hashlib.new("sm3", b"abc").hexdigest().upper() == expected


def test_sm4_known_answer_through_sm4_key() -> None:
    vector = "0123456789abcdeffedcba9876543210"
    encryptor = Cipher(algorithms.SM4(sm4_key(vector)), modes.ECB()).encryptor()  # noqa: S305
    ciphertext = encryptor.update(bytes.fromhex(vector)) + encryptor.finalize()
    assert ciphertext.hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_digest_is_pkcs7_padded_ecb() -> None:
    # A sign string of exactly 16 bytes gets a whole block of padding (16 x 0x10), each block alone (ECB).
    key = "0123456789abcdeffedcba9876543210"
    encryptor = Cipher(algorithms.SM4(bytes.fromhex(key)), modes.ECB()).encryptor()  # noqa: S305
    expected = encryptor.update(b"abcdefghijklmnop" + b"\x10" * 16) + encryptor.finalize()
    assert digest("abcdefghijklmnop", key, SignAlgorithm.SM4) == expected.hex().upper()
    assert digest("abcdefghijklmnopabcdefghijklmnop", key, SignAlgorithm.SM4)[:64] == expected.hex().upper()[:32] * 2


# ------------------------------------------------------------------ SM4 secrets


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        ("0123456789abcdef0123456789abcdef", bytes.fromhex("0123456789abcdef0123456789abcdef")),
        ("0123456789ABCDEF0123456789ABCDEF", bytes.fromhex("0123456789abcdef0123456789abcdef")),
        ("abcdefghijklmnop", b"abcdefghijklmnop"),
        ("0123456789abcdef", b"0123456789abcdef"),
    ],
)
def test_sm4_key_forms(secret: str, key: bytes) -> None:
    assert sm4_key(secret) == key


def test_sm4_plain_and_hex_secrets_are_different_keys() -> None:
    plain = "0123456789abcdef"
    hex_secret = plain.encode("ascii").hex()  # the same 16 bytes written as 32 hex digits
    assert sm4_key(hex_secret) == sm4_key(plain)
    # ...yet the sign differs, because the secret text itself is part of the sign string.
    params = {"a": "1"}
    assert sign(params, plain, SignAlgorithm.SM4) != sign(params, hex_secret, SignAlgorithm.SM4)
    assert sign(params, plain, SignAlgorithm.SM4) == independent_sign("a=1&key=" + plain, plain, SignAlgorithm.SM4)


BAD_SM4_SECRETS: Final = [
    pytest.param("", id="empty"),
    pytest.param("short", id="5-chars"),
    pytest.param("0123456789abcde", id="15-chars"),
    pytest.param("0123456789abcdef0", id="17-chars"),
    pytest.param("0123456789abcdef0123456789abcdeg", id="32-not-hex"),
    pytest.param("0123456789abcdef0123456789abcdef0", id="33-chars"),
    pytest.param("特种设备安全监管信息共享接口规范", id="16-chinese-chars"),
    pytest.param("é" * 8, id="16-utf8-bytes-not-ascii"),
]


@pytest.mark.parametrize("secret", BAD_SM4_SECRETS)
def test_bad_sm4_secret_raises_secret_format_error(secret: str) -> None:
    with pytest.raises(SecretFormatError, match="SM4 secret must be 16 ASCII characters or 32 hex digits"):
        sm4_key(secret)
    with pytest.raises(SecretFormatError):
        sign({"a": "1"}, secret, SignAlgorithm.SM4)


@pytest.mark.parametrize("secret", BAD_SM4_SECRETS)
def test_verify_with_bad_sm4_secret_is_false(secret: str) -> None:
    assert verify(WORKED_PARAMS, secret, SignAlgorithm.SM4, "00" * 16) is False


@pytest.mark.parametrize("secret", ["0123456789abcdef0123456789ab  cd", "0123456789abcdef0123456789ab\tcd "])
def test_verify_with_whitespace_hex_sm4_secret_is_false(secret: str) -> None:
    assert len(secret) == 32
    assert verify(WORKED_PARAMS, secret, SignAlgorithm.SM4, "00" * 16) is False


# ------------------------------------------------------------------ verify


@pytest.mark.parametrize(("algorithm", "expected_text", "expected_sign"), WORKED_EXAMPLES)
def test_verify_is_case_insensitive(algorithm: SignAlgorithm, expected_text: str, expected_sign: str) -> None:
    del expected_text
    mixed = "".join(ch.lower() if i % 2 else ch for i, ch in enumerate(expected_sign))
    for received in (expected_sign, expected_sign.lower(), mixed):
        assert verify(WORKED_PARAMS, WORKED_SECRET, algorithm, received)


def _flip_last(hex_text: str) -> str:
    return hex_text[:-1] + ("0" if hex_text[-1] != "0" else "1")


@pytest.mark.parametrize(("algorithm", "expected_text", "expected_sign"), WORKED_EXAMPLES)
def test_verify_rejects_wrong_or_malformed_sign(
    algorithm: SignAlgorithm, expected_text: str, expected_sign: str
) -> None:
    del expected_text
    wrong = [
        "",
        _flip_last(expected_sign),
        expected_sign[:-2],
        expected_sign + "00",
        " " + expected_sign,
        expected_sign + "\n",
        "Z" * len(expected_sign),
        expected_sign[:-1] + "G",
        "０" + expected_sign[1:],  # full-width digit
        expected_sign[:-1] + "\udc80",  # lone surrogate
    ]
    for received in wrong:
        assert verify(WORKED_PARAMS, WORKED_SECRET, algorithm, received) is False, received
    # The right sign under another secret or another algorithm does not verify either.
    assert verify(WORKED_PARAMS, "fedcba9876543210fedcba9876543210", algorithm, expected_sign) is False
    for other in ALGORITHMS:
        if other is not algorithm:
            assert verify(WORKED_PARAMS, WORKED_SECRET, other, expected_sign) is False


def test_verify_rejects_non_hex_that_upper_cases_to_hex() -> None:
    algorithm, _, expected_sign = WORKED_EXAMPLES[1]
    assert "FF" in expected_sign
    received = expected_sign.replace("FF", "\ufb00", 1)
    assert verify(WORKED_PARAMS, WORKED_SECRET, algorithm, received) is False


# ------------------------------------------------------------------ properties

NAMES: Final = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=12).filter(
    lambda name: name != "sign"
)
VALUES: Final = st.text(max_size=40)
NON_EMPTY: Final = st.text(min_size=1, max_size=40)
PARAMS: Final = st.dictionaries(NAMES, VALUES, max_size=8)
SECRETS: Final = st.sampled_from([WORKED_SECRET, "abcdefghijklmnop", "FEDCBA9876543210FEDCBA9876543210"])
PROPERTY_SETTINGS: Final = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(params=PARAMS, secret=SECRETS)
def test_property_sign_verifies_and_matches_independent_implementation(params: dict[str, str], secret: str) -> None:
    text = "&".join(f"{name}={params[name]}" for name in sorted(params) if params[name]) + "&key=" + secret
    assert sign_string(params, secret) == text
    for algorithm in ALGORITHMS:
        signature = sign(params, secret, algorithm)
        assert signature == independent_sign(text, secret, algorithm), algorithm
        assert verify(params, secret, algorithm, signature), algorithm
        assert verify({**params, "sign": signature}, secret, algorithm, signature), algorithm
        # The same parameters given as their UTF-8 text (how answers are signed) sign the same.
        encoded = {name: value.encode("utf-8") for name, value in params.items()}
        assert sign_encoded({**encoded, "sign": b"X"}, secret, algorithm) == signature, algorithm


@PROPERTY_SETTINGS
@given(data=st.data(), params=PARAMS.filter(lambda p: any(p.values())), secret=SECRETS)
def test_property_any_single_change_breaks_the_sign(data: st.DataObject, params: dict[str, str], secret: str) -> None:
    # change one value (to another non-empty value)
    changed_name = data.draw(st.sampled_from(sorted(params)), label="changed")
    new_value = data.draw(NON_EMPTY.filter(lambda value: value != params[changed_name]), label="new value")
    changed = {**params, changed_name: new_value}
    # add a parameter with a non-empty value
    added_name = data.draw(NAMES.filter(lambda name: name not in params), label="added")
    added = {**params, added_name: data.draw(NON_EMPTY, label="added value")}
    # remove a parameter whose value is not empty
    removed_name = data.draw(st.sampled_from(sorted(name for name, value in params.items() if value)), label="removed")
    removed = {name: value for name, value in params.items() if name != removed_name}
    for algorithm in ALGORITHMS:
        signature = sign(params, secret, algorithm)
        assert not verify(changed, secret, algorithm, signature), algorithm
        assert not verify(added, secret, algorithm, signature), algorithm
        assert not verify(removed, secret, algorithm, signature), algorithm
        # By design an empty value is left out of the sign string: adding one changes nothing.
        assert verify({**params, added_name: ""}, secret, algorithm, signature), algorithm
