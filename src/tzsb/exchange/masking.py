"""Masking of sensitive fields in answers (spec 5.2.2 c; 个人信息保护法 §28, GB/T 35273-2020).

ID number: first 6 + last 4; mobile: first 3 + last 4; a person's name: the surname; address:
down to the county; bank card: first 6 + last 4. Always for purpose 31 (public), otherwise
unless the app is granted ``unmasked`` for the business type.

A mask must not be undone by the rest of the same record. Two ways a record gives a hidden part
away, and what the masker does about each:

- by construction: a field the catalog declares ``reveals`` (0103 ``BIRTH_DATE`` is an ID number's
  digits 7–14) is sensitive itself and fully hidden whenever the answer is masked;
- by echo: a source writes a sensitive value again into another field (a certificate number that is
  the holder's ID number, a mobile as the mailbox name, a sole trader's name inside the unit name, a
  birth date written out in free text). Every other text field of the record is searched for the
  masked values of that record, and each occurrence is masked as the value itself is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Final

import orjson

from tzsb.catalog import BusinessType
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.protocol import PUBLIC_PURPOSE

_COUNTY: Final = re.compile(r"(?<!自治)[区县旗]")
_CITY: Final = re.compile(r"市(?!场)")
_NAME_SEPARATORS: Final = re.compile(r"[,，、;；\s]+")


def _keep(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def _names(value: str) -> list[str]:
    """The names in ``value`` (one name, or several separated by commas, 、, semicolons or spaces)."""
    # One name, the usual case, needs no regular expression: no separator is a letter.
    if value.isalpha():
        return [value]
    return [part for part in _NAME_SEPARATORS.split(value) if part]


def _name(value: str) -> str:
    if value.isalpha():
        return value[:1] + "*" * max(len(value) - 1, 1)
    return "、".join(part[:1] + "*" * max(len(part) - 1, 1) for part in _names(value))


def _address(value: str) -> str:
    # Down to the county: up to the first county-level suffix (区/县/旗), else the last 市 of
    # the head (county-level cities), else the first six characters.
    head = value[:20]
    county = _COUNTY.search(head)
    if county is not None:
        end = county.end()
    else:
        cities = [match.end() for match in _CITY.finditer(head)]
        end = cities[-1] if cities else min(6, len(value))
    kept = value[:end]
    return kept + "****" if len(value) > end else kept


MASKERS: Final[dict[str, Callable[[str], str]]] = {
    "id_card": lambda value: _keep(value, 6, 4),
    "mobile": lambda value: _keep(value, 3, 4),
    "phone": lambda value: _keep(value, 3, 4),
    "bank_card": lambda value: _keep(value, 6, 4),
    "name": _name,
    "address": _address,
    "all": lambda value: "******",
}


#: Shortest fully hidden text or address remainder searched for elsewhere: shorter ones ("无",
#: "轻伤") are common words, and masking every occurrence would hide text without hiding a value.
_MIN_ECHO: Final = 4
#: Fewest digits of a number searched for elsewhere: a landline without its area code has 7; fewer
#: digits are not a number anyone could be reached or identified by, and turn up in every date.
_MIN_DIGITS: Final = 7
_ID_BIRTH_DATE: Final = re.compile(r"[0-9]{6}((?:19|20)[0-9]{2})([0-9]{2})([0-9]{2})[0-9]{3}[0-9Xx]")


def _stars(match: re.Match[str]) -> str:
    return "*" * len(match[0])


def _masked_name(match: re.Match[str]) -> str:
    return _name(match[0])


def _spaced(digits: str) -> str:
    # The same digits however a source groups them: 138 6715 2308, 0571-88731256, 057188731256.
    return r"[-\s]?".join(re.escape(digit) for digit in digits)


_Echo = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


#: Every byte but the ASCII digits and X: deleted from UTF-8 text, they leave its number characters
#: (no byte of a multi-byte character is ASCII). Five times as fast as a regular expression, and a
#: masked page of 100 records computes this for every record's other text.
_NOT_NUMBER_BYTES: Final = bytes(byte for byte in range(256) if byte not in b"0123456789Xx")
#: Upper-cases the check digit x as the bytes are filtered (no ``upper()`` of the result afterwards).
_UPPER_X: Final = bytes.maketrans(b"x", b"X")


def _number(text: str) -> str:
    """The digits (and check-digit X, upper-cased) of ``text``, in order: ``[^0-9Xx]`` removed."""
    if text.isascii() and text.isdigit():
        return text
    return text.encode("utf-8", "surrogatepass").translate(_UPPER_X, _NOT_NUMBER_BYTES).decode("ascii")


def _echoes(kind: str, value: str, others: str, other_digits: Callable[[], str]) -> list[_Echo]:
    """Patterns of how ``value`` shows up written into another field, each with its replacement.

    Only the patterns that can match ``others`` (the record's other text; ``other_digits``: its digits)
    are built, so an ordinary record compiles none: a 0103 record masks in 14 µs (4 without the echo
    search), against 50 µs compiling every pattern each time.
    """
    mask_like = MASKERS[kind]
    found: list[_Echo] = []
    if kind in ("id_card", "mobile", "phone", "bank_card"):
        digits = _number(value)
        if len(digits) < _MIN_DIGITS:
            return found
        if digits in others or digits in other_digits():
            found.append((re.compile(_spaced(digits), re.IGNORECASE), lambda match: mask_like(match[0])))
        birth = _ID_BIRTH_DATE.fullmatch(value) if kind == "id_card" else None
        if birth is not None and birth[1] in others:
            # The hidden eight digits are the birth date; the visible check digit confirms a guess, so
            # every written form of the date counts: 19850312, 1985-3-12, 1985/03/12, 1985年3月12日.
            year, month, day = birth[1], int(birth[2]), int(birth[3])
            written = (
                rf"(?<![0-9]){year}{month:02d}{day:02d}(?![0-9])"
                rf"|(?<![0-9]){year}\s*([-/.])\s*0?{month}\s*\1\s*0?{day}(?![0-9])"
                rf"|{year}\s*年\s*0?{month}\s*月\s*0?{day}(?![0-9])(?:\s*日)?"
            )
            found.append((re.compile(written), _stars))
        return found
    if kind == "name":
        if value.isalpha():  # one name, the usual case
            return [] if len(value) < 2 or value not in others else [(re.compile(re.escape(value)), _masked_name)]
        # Longest first, then in text order: a name inside a longer one is masked the same every time.
        names = sorted(
            {part for part in _names(value) if len(part) >= 2 and part in others}, key=lambda name: (-len(name), name)
        )
        return [(re.compile(re.escape(name)), _masked_name) for name in names]
    if len(value) >= _MIN_ECHO and value in others:
        found.append((re.compile(re.escape(value)), lambda match: mask_like(match[0])))
    if kind == "address":
        hidden = value[len(_address(value).removesuffix("****")) :]
        if len(hidden) >= _MIN_ECHO and hidden in others:
            found.append((re.compile(re.escape(hidden)), lambda match: "****"))
    return found


def _texts_joined(values: Collection[Any]) -> str:
    """The non-empty texts among ``values``, one a line."""
    if "" not in values:
        try:
            return "\n".join(values)
        except TypeError:  # a value that is not a text
            pass
    return "\n".join([value for value in values if type(value) is str and value])


def receives_masked(context: RequestContext, admitted: Admitted) -> bool:
    """Whether the caller receives this business type masked (always for the public purpose)."""
    return context.purpose == PUBLIC_PURPOSE or admitted.business.code not in admitted.app.unmasked


#: The masker's own code, as a digest: every change to what ``masker`` makes of some record lives in
#: this module (the masks, the thresholds, the echo search), and copies masked by an earlier version
#: of it are not served (``mask_plan``). Any edit, a comment's too, only costs re-masking each record
#: once, as masked pages read it.
MASKER_CODE: Final = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _sensitive_in_order(business: BusinessType) -> list[tuple[str, str]]:
    """The sensitive fields of ``business`` with their masks, in the order ``masker`` masks them (the
    order matters where two masked values' echoes overlap)."""
    return [(spec.code, spec.mask or "all") for spec in business.fields if spec.sensitive]


def mask_plan(business: BusinessType) -> str:
    """What a masked copy of a record of ``business`` depends on besides the record, as a short digest:
    the masker's code and the type's sensitive fields with their masks, in order. Copies kept under
    another digest (``store.masked_copies``) are not served."""
    return hashlib.sha256(orjson.dumps([MASKER_CODE, business.code, _sensitive_in_order(business)])).hexdigest()[:16]


def masker(business: BusinessType) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that returns a masked copy of a record of ``business``.

    Sensitive fields (with the fields the catalog says reveal them, which the loader makes
    sensitive) are masked; then every other text field has each masked value's echoes masked.
    """
    plan = [(code, kind, MASKERS[kind]) for code, kind in _sensitive_in_order(business)]
    sensitive = frozenset(code for code, _, _ in plan)

    def mask(record: dict[str, Any]) -> dict[str, Any]:
        masked = dict(record)
        if not plan:
            return masked
        # The record's other text, searched for echoes. Numbers are left alone: no numeric field of the
        # catalog holds an ID or phone number. Every value a non-empty text, the usual case, is joined
        # at once (empty texts are left out all the same: an extra separator could let an echo be
        # found, or missed, in text an earlier echo's mask wrote). Records come from JSON decoders,
        # whose texts are plain ``str``.
        rest = dict(record)
        for code in sensitive:
            rest.pop(code, None)
        others = _texts_joined(rest.values())
        # The others' digits only when a number is to be looked for in them (a third of the cost).
        digits_of_others: list[str] = []

        def other_digits() -> str:
            if not digits_of_others:
                digits_of_others.append(_number(others))
            return digits_of_others[0]

        echoes: list[_Echo] = []
        for code, kind, mask_value in plan:
            value = masked.get(code)
            if isinstance(value, str) and value:
                masked[code] = mask_value(value)
                if found := _echoes(kind, value, others, other_digits):
                    echoes += found
            elif value is not None and not isinstance(value, str):
                masked[code] = "******"
        if echoes:
            texts = [name for name, value in record.items() if type(value) is str and value and name not in sensitive]
            for pattern, replace in echoes:
                for name in texts:
                    masked[name] = pattern.sub(replace, masked[name])
        return masked

    return mask
