"""Schemathesis against the node's own OpenAPI description (GET /openapi.json), served in-process.

Requests are generated from the description, both fitting it (positive) and breaking it
(negative). Half of the JSON ones are then signed with a registered app's secret (and given a
business code it is granted), so they get past authentication into authorisation, validation,
writes and queries. Every answer must:

- not be a server error, and conform to the description (status code, content type, schema);
- for the interface: be HTTP 200 JSON with ``datalist.result`` 0000 or 0001 and never ``E_INTERNAL``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import grant
from tzsb.app import Node
from tzsb.errors import ExchangeError
from tzsb.protocol.messages import parse_request
from tzsb.protocol.signing import SignAlgorithm, sign
from tzsb.web import create_asgi

INTERFACE = "/tzsb/exchange"
APPID = "hz-city"
GRANTED = ("140101", "140102", "140103", "310101")
BUDGET = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def exchange_answer(ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]) -> None:
    """The interface always answers in the spec's envelope: HTTP 200 JSON, result 0000/0001, no E_INTERNAL."""
    if case.path != INTERFACE:
        return
    assert response.status_code == 200, response.status_code
    assert response.headers["content-type"] == ["application/json; charset=utf-8"], response.headers
    datalist = orjson.loads(response.content)["datalist"]
    assert datalist["result"] in ("0000", "0001"), datalist
    assert datalist.get("code") != "E_INTERNAL", datalist


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    exchange_answer,
]


@pytest.fixture
def api(node: Node) -> Iterator[tuple[schemathesis.BaseSchema, str]]:
    """The node's description, loaded from its own GET /openapi.json, and the secret of a granted app."""
    secret = grant(node, busicodes=frozenset(GRANTED))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_asgi(node))
    yield schema, secret
    shutdown_lifespans()


def signed_by_app(case: schemathesis.Case[Any], secret: str, busicode: str) -> None:
    """Turn a generated request into a JSON one of the granted app's, correctly signed (when it parses at all)."""
    if not isinstance(case.body, dict):
        return
    body = {name: value for name, value in case.body.items() if name not in ("basicode", "timestamp")}
    body.update(appid=APPID, busicode=busicode, random=str(uuid.uuid4()), sign="00")
    try:
        request = parse_request(orjson.dumps(body), "application/json")
    except (ExchangeError, orjson.JSONEncodeError):
        return
    body["sign"] = sign(request.signed_params, secret, SignAlgorithm.MD5)
    case.body = body
    case.media_type = "application/json"


def test_the_description_lists_the_interface(api: tuple[schemathesis.BaseSchema, str]) -> None:
    schema, _ = api
    assert set(schema) == {INTERFACE, "/healthz"}
    assert "post" in {method.lower() for method in schema[INTERFACE]}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_interface_answers_every_generated_request(
    api: tuple[schemathesis.BaseSchema, str], mode: GenerationMode
) -> None:
    schema, secret = api
    operation = schema[INTERFACE]["POST"]

    @BUDGET
    @given(case=operation.as_strategy(mode), resign=st.booleans(), busicode=st.sampled_from(GRANTED))
    def run(case: schemathesis.Case[Any], resign: bool, busicode: str) -> None:
        if resign:
            signed_by_app(case, secret, busicode)
        case.call_and_validate(checks=CHECKS)

    run()


def test_health_conforms(api: tuple[schemathesis.BaseSchema, str]) -> None:
    schema, _ = api

    @settings(BUDGET, max_examples=5)
    @given(case=schema["/healthz"]["GET"].as_strategy())
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(checks=CHECKS)
        assert response.json()["status"] == "ok"

    run()
