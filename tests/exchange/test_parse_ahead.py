"""A large busilist sent as a string is parsed while its request's sign is checked in a helper thread,
only for a caller that may be genuine: the answers are those of checking the sign first."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from tests.exchange import test_errors
from tests.support import body, call, device, grant, log_rows, snapshot, tallied
from tzsb import refusals
from tzsb.app import Node
from tzsb.errors import ExchangeError
from tzsb.exchange import overlap
from tzsb.exchange.overlap import DIGESTS_ASIDE_BYTES
from tzsb.protocol.messages import response_signed_params
from tzsb.protocol.signing import SignAlgorithm, verify

APPID = "hz-city"
#: Two hundred devices: a sign text of about 80 KB.
LARGE = [device(number) for number in range(200)]


@pytest.fixture
def parsed_ahead(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests whose digests went to the helper thread."""
    submitted: list[int] = []
    digest_while_parsing = node.exchange.digests.digest_while_parsing

    def counting(*arguments: Any) -> Any:
        submitted.append(1)
        return digest_while_parsing(*arguments)

    monkeypatch.setattr(node.exchange.digests, "digest_while_parsing", counting)
    return submitted


SIGN_MISMATCH = refusals.signature_mismatch("MD5")


def _locked(node: Node) -> ExchangeError:
    return refusals.locked_out(APPID, "127.0.0.1", node.clock.now() + timedelta(hours=24))


def _refusal(datalist: dict[str, Any]) -> tuple[str, str]:
    return datalist["code"], datalist["message"]


def _expected(refusal: ExchangeError) -> tuple[str, str]:
    return refusal.code.value, refusal.message


def test_the_large_batch_is_large_enough() -> None:
    assert len(orjson.dumps(LARGE)) > DIGESTS_ASIDE_BYTES


@pytest.mark.parametrize("algorithm", list(SignAlgorithm))
def test_a_large_add_is_parsed_while_its_sign_is_checked(
    node: Node, parsed_ahead: list[int], algorithm: SignAlgorithm
) -> None:
    secret = grant(node, sign=algorithm)
    answer = call(node, body(APPID, secret, "140101", "01", LARGE, sign=algorithm))
    assert answer["datalist"]["result"] == "0001", answer
    assert answer["datalist"]["counts"]["inserted"] == len(LARGE)
    assert verify(response_signed_params(answer), secret, algorithm, answer["sign"])
    assert parsed_ahead == [1]


def test_the_helper_starts_its_digests_before_the_busilist_is_parsed(
    node: Node, parsed_ahead: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """orjson holds the GIL for the whole parse: a helper not yet started would only start after it,
    and the digests and the parse would run in series."""
    helper_started: list[str] = []
    started_first: list[bool] = []
    original_parse = overlap.parsed_records

    class Recorded(threading.Event):
        def set(self) -> None:
            if threading.current_thread().name.startswith("tzsb-digest"):
                helper_started.append("started")
            super().set()

    def parse(request: Any) -> Any:
        started_first.append(bool(helper_started))
        return original_parse(request)

    # Only the module's own events (patching threading's would reach the threads' start-up).
    monkeypatch.setattr(overlap, "threading", SimpleNamespace(Event=Recorded))
    monkeypatch.setattr(overlap, "parsed_records", parse)
    # Long enough for a loaded machine: the wait ends as soon as the helper starts.
    monkeypatch.setattr(overlap, "HELPER_START_WAIT_SECONDS", 30.0)
    secret = grant(node)
    # The pool's threads started by earlier requests (a first submission starts a thread, and that
    # start alone hands it the GIL): the last request meets an idle helper.
    for first in range(3):
        batch = [device(number) for number in range(1000 + 200 * first, 1200 + 200 * first)]
        assert call(node, body(APPID, secret, "140101", "01", batch))["datalist"]["result"] == "0001"
    helper_started.clear()
    started_first.clear()
    answer = call(node, body(APPID, secret, "140101", "01", LARGE))
    assert answer["datalist"]["result"] == "0001", answer
    assert parsed_ahead == [1, 1, 1, 1]
    assert started_first == [True]


def test_with_every_helper_taken_the_busilist_is_parsed_without_waiting(
    node: Node, parsed_ahead: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """This may be the event loop's thread: it waits for a helper only when one is free to start."""
    waits: list[float | None] = []

    class Recorded(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            return super().wait(timeout)

    pool = node.exchange.digests
    release = threading.Event()
    taken = [pool._executor.submit(release.wait, 30) for _ in range(pool._helpers)]
    secret = grant(node)
    monkeypatch.setattr(overlap, "threading", SimpleNamespace(Event=Recorded))
    monkeypatch.setattr(overlap, "HELPER_START_WAIT_SECONDS", 30.0)
    pool._in_flight += len(taken)  # (as digests of other requests would count)
    try:
        threading.Timer(0.2, release.set).start()
        answer = call(node, body(APPID, secret, "140101", "01", LARGE))
    finally:
        pool._in_flight -= len(taken)
        release.set()
    assert answer["datalist"]["result"] == "0001", answer
    assert parsed_ahead == [1]
    assert waits == []
    # A helper free again: the next one waits for it to start.
    answer = call(node, body(APPID, secret, "140101", "01", [device(number) for number in range(600, 800)]))
    assert answer["datalist"]["result"] == "0001", answer
    assert waits == [30.0]


def test_both_secrets_sign_large_requests_during_a_rotation(node: Node, parsed_ahead: list[int]) -> None:
    old = grant(node)
    new = node.registry.rotate_secret(APPID, timedelta(hours=1))
    for secret, batch in ((old, LARGE), (new, [device(number) for number in range(300, 500)])):
        answer = call(node, body(APPID, secret, "140101", "01", batch))
        assert answer["datalist"]["result"] == "0001", answer
        assert verify(response_signed_params(answer), secret, SignAlgorithm.MD5, answer["sign"])
    assert parsed_ahead == [1, 1]


def test_a_busilist_sent_as_an_array_or_small_is_not_parsed_ahead(node: Node, parsed_ahead: list[int]) -> None:
    secret = grant(node)
    as_array = orjson.loads(body(APPID, secret, "140101", "01", LARGE, random="as-an-array-0001"))
    as_array["busilist"] = orjson.loads(as_array["busilist"])
    assert call(node, orjson.dumps(as_array))["datalist"]["result"] == "0001"
    small = call(node, body(APPID, secret, "140101", "01", [device(500)], random="a-small-one-0001"))
    assert small["datalist"]["result"] == "0001"
    assert parsed_ahead == []


def test_a_body_over_the_apps_byte_limit_is_refused_unparsed(node: Node, parsed_ahead: list[int]) -> None:
    secret = grant(node, max_bytes=50_000)
    payload = body(APPID, secret, "140101", "01", LARGE)
    before, logged = snapshot(node), len(log_rows(node))
    answer = call(node, payload)
    assert _refusal(answer["datalist"]) == _expected(refusals.body_over_app_limit(len(payload), 50_000))
    assert snapshot(node) == before  # a size limit does not claim the random
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_LIMIT"]
    assert parsed_ahead == []


def test_large_forged_requests_lock_their_caller_out_and_are_not_parsed_ahead_after_the_first(
    node: Node, parsed_ahead: list[int]
) -> None:
    secret = grant(node)
    before, logged = snapshot(node), len(log_rows(node))
    answers = [
        call(node, body(APPID, "0" * 32, "140101", "01", LARGE, random=f"forged-{attempt:04d}"))["datalist"]
        for attempt in range(3)
    ]
    assert [_refusal(item) for item in answers] == [
        _expected(SIGN_MISMATCH),
        _expected(SIGN_MISMATCH),
        _expected(_locked(node)),
    ]
    genuine = call(node, body(APPID, secret, "140101", "01", LARGE, random="genuine-0001"))["datalist"]
    assert _refusal(genuine) == _expected(_locked(node))
    assert snapshot(node) == before
    # Failed signatures are logged one by one (and counted); refusals of a locked-out caller are only counted.
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_SIGN", "E_SIGN"]
    assert tallied(node) == [("127.0.0.1", 4, "E_LOCKED")]  # the failed signatures count toward the limit too
    # Only the first: a caller with recent signature failures is parsed after its sign is checked.
    assert parsed_ahead == [1]


def test_a_sign_text_over_the_bound_is_parsed_after_its_caller_is_known(
    node: Node, parsed_ahead: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the bound (4 MiB; lowered here so that a small batch crosses it) even a genuine caller's
    busilist waits for the sign check; a forged one is refused unparsed."""
    monkeypatch.setattr(overlap, "PARSE_AHEAD_MAX_BYTES", len(orjson.dumps(LARGE)) - 1)
    secret = grant(node)
    before, logged = snapshot(node), len(log_rows(node))
    forged = call(node, body(APPID, "0" * 32, "140101", "01", LARGE, random="forged-0001"))["datalist"]
    assert _refusal(forged) == _expected(SIGN_MISMATCH)
    assert snapshot(node) == before
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_SIGN"]
    assert call(node, body(APPID, secret, "140101", "01", LARGE))["datalist"]["result"] == "0001"
    assert parsed_ahead == []


@pytest.mark.parametrize(
    ("busilist", "options"),
    [
        pytest.param(test_errors.LARGE_NOT_JSON, {}, id="not-json"),
        pytest.param(test_errors.LARGE_NOT_JSON, {"secret": "0" * 32}, id="forged"),
        pytest.param(test_errors.LARGE_NOT_JSON, {"action": "05"}, id="unknown-action"),
    ],
)
def test_the_large_refusals_of_the_error_table_are_parsed_ahead(
    node: Node, parsed_ahead: list[int], monkeypatch: pytest.MonkeyPatch, busilist: str, options: dict[str, Any]
) -> None:
    """The table in test_errors.py checks their answers; this, that they take the path they are there for."""
    sent = test_errors.signed(busilist, **options)(node, monkeypatch)
    call(node, sent.payload, sent.content_type)
    assert parsed_ahead == [1]
