"""Request and response messages (spec 6.4, table 5, table 8, appendix A).

A request arrives as a JSON object or as form fields with the same names. Parsing keeps the text
that was received, because the signature is computed over it, and refuses anything ambiguous:
unknown parameters, non-string values, duplicate form fields, malformed envelope values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson

from tzsb import refusals
from tzsb.errors import ExchangeError
from tzsb.protocol.codes import RESULT_FAILURE, RESULT_SUCCESS
from tzsb.protocol.signing import SignAlgorithm, sign_encoded

#: Appendix A.1.1 spells ``busicode`` as ``basicode``; both names are accepted, never both at once.
BUSICODE_ALIAS: Final = "basicode"
ENVELOPE: Final = ("appid", "busicode", "action", "busilist", "random", "sign")
#: Optional, signed: seconds since the epoch, so a captured request cannot be replayed later.
TIMESTAMP: Final = "timestamp"
_KNOWN: Final = frozenset((*ENVELOPE, BUSICODE_ALIAS, TIMESTAMP))
#: Each known name as it is written between quotes in a body (``_names_appear_once``).
_QUOTED_KNOWN: Final = tuple(b'"' + name.encode() + b'"' for name in sorted(_KNOWN))

APPID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")

_FORMATS: Final[dict[str, tuple[re.Pattern[str], str, str]]] = {
    "appid": (
        APPID_PATTERN,
        "1–64 位字母、数字、下划线或连字符",
        "1-64 characters of A-Z a-z 0-9 _ -",
    ),
    "busicode": (re.compile(r"[0-9]{6}"), "6 位数字（用途 2 位 + 业务 4 位）", "6 digits (purpose 2 + business 4)"),
    "action": (re.compile(r"[0-9]{2}"), "2 位数字 01/02/03/04", "2 digits: 01, 02, 03 or 04"),
    "random": (
        re.compile(r"[A-Za-z0-9_-]{8,64}"),
        "8–64 位字母、数字、下划线或连字符，建议使用 UUID",
        "8-64 characters of A-Z a-z 0-9 _ -; a UUID is recommended",
    ),
    # No upper bound: an SM4 sign is the whole sign string encrypted, as long as the request itself.
    "sign": (re.compile(r"[0-9A-Fa-f]+"), "十六进制大写字符串", "upper-case hex"),
    TIMESTAMP: (re.compile(r"[0-9]{10}"), "10 位 Unix 时间戳（秒）", "10-digit Unix time in seconds"),
}

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """A request whose envelope is well formed; ``busilist`` is still the received text."""

    appid: str
    busicode: str
    action: str
    busilist_text: str
    random: str
    sign: str
    #: The signed parameters exactly as received (``basicode`` stays ``basicode``).
    signed_params: dict[str, str]
    #: The busilist already parsed when it arrived as a JSON array (saves a second parse).
    busilist_value: list[Any] | None = None
    #: The optional signed ``timestamp`` (Unix seconds).
    timestamp: int | None = None

    def records(self) -> list[dict[str, Any]]:
        """The busilist as a list of JSON objects, or ``E_PARAM``."""
        value: Any = self.busilist_value
        if value is None:
            try:
                value = orjson.loads(self.busilist_text)
            except orjson.JSONDecodeError:
                raise refusals.busilist_not_json() from None
        if not isinstance(value, list):
            raise refusals.busilist_not_array()
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise refusals.busilist_item_not_object(index)
        return value


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """Decode the body into its top-level parameters (JSON object or form fields)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == FORM_CONTENT_TYPE:
        try:
            text = body.decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise refusals.body_not_json() from None
        fields: dict[str, Any] = {}
        for name, value in pairs:
            if name in fields:
                raise refusals.parameter_repeated(name)
            fields[name] = value
        return fields
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise refusals.body_not_json() from None
    if not isinstance(parsed, dict):
        raise refusals.body_not_json()
    repeated = _repeated_top_level_name(body, parsed.get("busilist"))
    if repeated is not None:
        raise refusals.parameter_repeated(repeated)
    return parsed


def _repeated_top_level_name(body: bytes, busilist: Any = None) -> str | None:
    """A parameter named twice in the JSON object (orjson keeps the last silently).

    A proxy that reads the first value and a node that reads the last would disagree about the
    caller, so a repeat is refused. Counting the quoted names is cheap; only when one appears
    twice (it may sit inside a record) is the body parsed again, slowly, to look at the top level.
    """
    if _names_appear_once(_outside_busilist(body, busilist)):
        return None
    calls: list[str | None] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        calls.append(next((name for name in names if names.count(name) > 1), None))
        return dict(pairs)

    try:
        json.loads(body, object_pairs_hook=pairs_hook)
    except (RecursionError, ValueError):
        raise refusals.body_not_json() from None
    # The outermost object is the last one the decoder finishes.
    return calls[-1] if calls else None


def _names_appear_once(parts: tuple[bytes, ...]) -> bool:
    # A name may also be spelled with \u escapes ("app\u0069d"); then only decoding can tell.
    if any(b"\\u" in part for part in parts):
        return False
    if len(parts) == 1:  # (nearly every body)
        count = parts[0].count
        return all(count(quoted) < 2 for quoted in _QUOTED_KNOWN)
    return all(sum(part.count(quoted) for part in parts) < 2 for quoted in _QUOTED_KNOWN)


_COLON: Final = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")


def _outside_busilist(body: bytes, busilist: Any) -> tuple[bytes, ...]:
    """The body without the string value of busilist, when that value can be found exactly.

    busilist is nearly all of a large body, and a JSON string holds no parameter names, so the
    names need only be counted around it. The value is located where the first "busilist" key
    points and must equal, byte for byte, a JSON encoding of the parsed value (orjson's, or the
    all-ASCII one many clients send). Cutting out a span that is a complete JSON string can never
    hide a key; when the value is not found so, the whole body is counted.
    """
    if not isinstance(busilist, str) or len(body) < 65536:
        return (body,)
    key = body.find(b'"busilist"')
    colon = _COLON.match(body, key + len(b'"busilist"')) if key >= 0 else None
    if colon is None:
        return (body,)
    start = colon.end()
    # orjson's spelling (raw UTF-8), or, for an all-ASCII body, the \u-escaped one of Python's json.
    encoded = json.dumps(busilist).encode("ascii") if body.isascii() else orjson.dumps(busilist)
    if body.startswith(encoded, start):
        return body[:start], body[start + len(encoded) :]
    return (body,)


def parse_request(body: bytes, content_type: str) -> ExchangeRequest:
    """Parse and check the envelope of a request; raises ``ExchangeError`` (E_JSON, E_PARAM)."""
    fields = parse_body(body, content_type)
    unknown = sorted(name for name in fields if name not in _KNOWN)
    if unknown:
        raise refusals.unknown_parameters(unknown)
    if "busicode" in fields and BUSICODE_ALIAS in fields:
        raise refusals.busicode_and_alias()
    busicode_name = BUSICODE_ALIAS if BUSICODE_ALIAS in fields else "busicode"

    signed: dict[str, str] = {}
    for name in ENVELOPE:
        wire_name = busicode_name if name == "busicode" else name
        if wire_name not in fields or fields[wire_name] is None or fields[wire_name] == "":
            raise refusals.parameter_missing(wire_name)
        value = fields[wire_name]
        if name == "busilist" and isinstance(value, list):
            continue
        if not isinstance(value, str):
            raise refusals.parameter_not_text(wire_name, array_allowed=name == "busilist")
        if name in _FORMATS:
            pattern, zh, en = _FORMATS[name]
            if not pattern.fullmatch(value):
                raise refusals.parameter_malformed(wire_name, zh, en)
        signed[wire_name] = value

    timestamp: int | None = None
    if TIMESTAMP in fields:
        value = fields[TIMESTAMP]
        pattern, zh, en = _FORMATS[TIMESTAMP]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise refusals.parameter_malformed(TIMESTAMP, zh, en)
        signed[TIMESTAMP] = value
        timestamp = int(value)

    busilist = fields["busilist"]
    busilist_value: list[Any] | None = None
    if isinstance(busilist, list):
        busilist_value = busilist
        try:
            busilist_text = orjson.dumps(busilist).decode("utf-8")
        except orjson.JSONEncodeError:
            # orjson reads deeper nesting than it writes; records are flat, so this is never data.
            raise refusals.busilist_too_deep() from None
    else:
        busilist_text = busilist
    signed["busilist"] = busilist_text
    sign_value = signed.pop("sign")
    return ExchangeRequest(
        appid=signed["appid"],
        busicode=signed[busicode_name],
        action=signed["action"],
        busilist_text=busilist_text,
        random=signed["random"],
        sign=sign_value,
        signed_params=signed,
        busilist_value=busilist_value,
        timestamp=timestamp,
    )


def success_datalist(message: str, busilist: list[Any], **extra: Any) -> dict[str, Any]:
    """``datalist`` of a successful answer (A.2.3 a)."""
    return {"result": RESULT_SUCCESS, "message": message, "busilist": busilist, **extra}


def failure_datalist(error: ExchangeError) -> dict[str, Any]:
    """``datalist`` of a refused request (A.2.3 b), with the stable machine ``code``."""
    datalist: dict[str, Any] = {"result": RESULT_FAILURE, "message": error.message, "code": error.code.value}
    if error.details:
        datalist["busilist"] = [fault.as_dict() for fault in error.details]
    return datalist


def encode_response(
    appid: str,
    busicode: str,
    random: str,
    datalist: dict[str, Any],
    secret: str | None,
    algorithm: SignAlgorithm,
) -> bytes:
    """The response body (table 8). ``sign`` is empty when the caller could not be verified."""
    datalist_json = orjson.dumps(datalist)
    signed = {
        "appid": appid.encode(),
        "busicode": busicode.encode(),
        "datalist": datalist_json,
        "random": random.encode(),
    }
    signature = sign_encoded(signed, secret, algorithm) if secret is not None else ""
    return orjson.dumps(
        {
            "appid": appid,
            "busicode": busicode,
            "datalist": orjson.Fragment(datalist_json),
            "random": random,
            "sign": signature,
        }
    )


def response_signed_params(response: dict[str, Any]) -> dict[str, str]:
    """The parameters a response's ``sign`` covers, as text (datalist compactly serialised)."""
    return {
        "appid": str(response.get("appid", "")),
        "busicode": str(response.get("busicode", "")),
        "datalist": orjson.dumps(response.get("datalist")).decode("utf-8"),
        "random": str(response.get("random", "")),
    }
