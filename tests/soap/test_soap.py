"""SOAP 1.2 and WSDL 1.1 (6.2 a): the same interface at the same path, read by zeep from the served
WSDL and by hand-built envelopes; malformed and hostile XML refused with a Fault and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import zeep
from lxml import etree

from tests.support import device, grant, log_rows, snapshot
from tests.sync.nodes import Served, serve_in_thread
from tzsb import soap
from tzsb.app import Node
from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm, verify

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS = soap.NAMESPACE


@pytest.fixture
def served(node: Node) -> Iterator[Served]:
    with serve_in_thread(node) as server:
        yield server


def _verified(answer: dict[str, Any], secret: str, algorithm: SignAlgorithm) -> dict[str, Any]:
    """The answer's datalist, after checking its sign over the exact datalist text."""
    params = {name: answer[name] for name in ("appid", "busicode", "datalist", "random")}
    assert verify(params, secret, algorithm, answer["sign"]), answer
    datalist: dict[str, Any] = orjson.loads(answer["datalist"])
    return datalist


@pytest.mark.parametrize("algorithm", list(SignAlgorithm))
def test_zeep_adds_and_queries_through_the_served_wsdl(node: Node, served: Served, algorithm: SignAlgorithm) -> None:
    secret = grant(node, appid="hz", region="330100", sign=algorithm)
    client = zeep.Client(f"{served.url}?wsdl")
    record = device(1)

    added = client.service.exchange(**build_request("hz", secret, algorithm, "140101", "01", [record]))
    datalist = _verified(dict(zeep.helpers.serialize_object(added)), secret, algorithm)
    assert datalist["result"] == "0001", datalist
    assert datalist["counts"]["inserted"] == 1

    query = build_request("hz", secret, algorithm, "140101", "04", [{"EQP_CODE": record["EQP_CODE"]}])
    answer = dict(zeep.helpers.serialize_object(client.service.exchange(**query)))
    assert (answer["appid"], answer["busicode"], answer["random"]) == ("hz", "140101", query["random"])
    found = _verified(answer, secret, algorithm)
    assert found["busilist"] == [record]
    # Logged like a JSON request.
    assert [(row["action"], row["result"]) for row in log_rows(node)] == [("01", "0001"), ("04", "0001")]


def test_the_wsdl_describes_one_document_literal_operation_over_soap_12(served: Served) -> None:
    reply = httpx.get(f"{served.url}?wsdl", timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/xml")
    document = etree.fromstring(reply.content)
    wsdl_ns = {"w": "http://schemas.xmlsoap.org/wsdl/", "s12": "http://schemas.xmlsoap.org/wsdl/soap12/",
               "x": "http://www.w3.org/2001/XMLSchema"}  # fmt: skip
    assert document.xpath("//w:portType/w:operation/@name", namespaces=wsdl_ns) == ["exchange"]
    assert document.xpath("//s12:binding/@style", namespaces=wsdl_ns) == ["document"]
    assert document.xpath("//s12:body/@use", namespaces=wsdl_ns) == ["literal", "literal"]
    assert document.xpath("//s12:address/@location", namespaces=wsdl_ns) == [served.url]
    request_names = document.xpath("//x:element[@name='exchange']//x:element/@name", namespaces=wsdl_ns)
    assert request_names == ["appid", "busicode", "action", "busilist", "random", "sign", "timestamp"]
    response_names = document.xpath("//x:element[@name='exchangeResponse']//x:element/@name", namespaces=wsdl_ns)
    assert response_names == ["appid", "busicode", "datalist", "random", "sign"]
    assert httpx.get(served.url, timeout=10).status_code == 405


def _envelope(fields: dict[str, str], *, prefix: str = "t") -> bytes:
    parts = "".join(f"<{prefix}:{name}>{_escape(value)}</{prefix}:{name}>" for name, value in fields.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="{SOAP12}"><env:Body>'
        f'<{prefix}:exchange xmlns:{prefix}="{NS}">{parts}</{prefix}:exchange></env:Body></env:Envelope>'
    ).encode()


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _post(served: Served, body: bytes, content_type: str = soap.CONTENT_TYPE) -> httpx.Response:
    return httpx.post(served.url, content=body, headers={"content-type": content_type}, timeout=60)


def _response(reply: httpx.Response) -> dict[str, str]:
    root = etree.fromstring(reply.content)
    [element] = root.iter(f"{{{NS}}}exchangeResponse")
    return {etree.QName(child).localname: child.text or "" for child in element}


def _fault(reply: httpx.Response) -> tuple[str, str]:
    root = etree.fromstring(reply.content)
    code = root.findtext(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Value") or ""
    reason = " | ".join(text.text or "" for text in root.iter(f"{{{SOAP12}}}Text"))
    return code, reason


def test_a_hand_built_envelope_is_answered_and_signed_as_json_would_be(node: Node, served: Served) -> None:
    secret = grant(node, appid="hz", region="330100")
    fields = build_request("hz", secret, SignAlgorithm.MD5, "140101", "01", [device(2)])

    reply = _post(served, _envelope(fields))

    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/soap+xml")
    assert _verified(_response(reply), secret, SignAlgorithm.MD5)["result"] == "0001"


def test_a_protocol_refusal_is_an_ordinary_response_with_the_same_code_and_message(node: Node, served: Served) -> None:
    secret = grant(node, appid="hz", region="330100")
    fields = build_request("hz", secret, SignAlgorithm.MD5, "140101", "01", [device(3)])
    as_json = httpx.post(served.url, json={**fields, "sign": "0" * 32, "random": "json-bad-sign-1"}, timeout=10)
    before = snapshot(node)

    reply = _post(served, _envelope({**fields, "sign": "0" * 32}))

    assert reply.status_code == 200
    answer = _response(reply)
    assert answer["sign"] == ""  # unverified caller: unsigned, as in JSON
    assert orjson.loads(answer["datalist"]) == as_json.json()["datalist"]
    assert orjson.loads(answer["datalist"])["code"] == "E_SIGN"
    assert snapshot(node)["records"] == before["records"]
    missing = _response(_post(served, _envelope({k: v for k, v in fields.items() if k != "random"})))
    assert orjson.loads(missing["datalist"])["code"] == "E_PARAM"


_XXE = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    f'<env:Envelope xmlns:env="{SOAP12}"><env:Body><t:exchange xmlns:t="{NS}"><t:appid>&secret;</t:appid>'
    "</t:exchange></env:Body></env:Envelope>"
).encode()
_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10))
    + f']><env:Envelope xmlns:env="{SOAP12}"><env:Body><t:exchange xmlns:t="{NS}"><t:appid>&lol9;</t:appid>'
    "</t:exchange></env:Body></env:Envelope>"
).encode()
_DEEP = (
    f'<env:Envelope xmlns:env="{SOAP12}"><env:Body><t:exchange xmlns:t="{NS}">'
    + "<a>" * 10_000
    + "</a>" * 10_000
    + "</t:exchange></env:Body></env:Envelope>"
).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "code", "reason"),
    [
        (_XXE, soap.CONTENT_TYPE, "env:Sender", "DOCTYPE"),
        (_LAUGHS, soap.CONTENT_TYPE, "env:Sender", "DOCTYPE"),
        (_DEEP, soap.CONTENT_TYPE, "env:Sender", "Not well-formed XML"),
        (b"<not-xml", soap.CONTENT_TYPE, "env:Sender", "Not well-formed XML"),
        (
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>',
            soap.CONTENT_TYPE,
            "env:VersionMismatch",
            "SOAP 1.2",
        ),
        (
            f'<env:Envelope xmlns:env="{SOAP12}"><env:Body><other/></env:Body></env:Envelope>'.encode(),
            soap.CONTENT_TYPE,
            "env:Sender",
            "exactly one",
        ),
        (
            f'<env:Envelope xmlns:env="{SOAP12}"><env:Header><h:auth xmlns:h="urn:x" env:mustUnderstand="true"/>'
            f'</env:Header><env:Body><t:exchange xmlns:t="{NS}"/></env:Body></env:Envelope>'.encode(),
            soap.CONTENT_TYPE,
            "env:MustUnderstand",
            "mustUnderstand",
        ),
        (
            f'<env:Envelope xmlns:env="{SOAP12}"><env:Body><t:exchange xmlns:t="{NS}"><t:appid>a</t:appid>'
            "<t:appid>b</t:appid></t:exchange></env:Body></env:Envelope>".encode(),
            soap.CONTENT_TYPE,
            "env:Sender",
            "appears twice",
        ),
        (_envelope({"appid": "a"}), "application/soap+xml; charset=utf-16", "env:Sender", "Only UTF-8"),
    ],
    ids=[
        "xxe",
        "billion-laughs",
        "10000-levels",
        "not-xml",
        "soap-11",
        "other-operation",
        "must-understand",
        "repeated-parameter",
        "utf-16",
    ],
)
def test_hostile_or_malformed_xml_gets_a_fault_and_nothing_is_written(
    node: Node, served: Served, body: bytes, content_type: str, code: str, reason: str
) -> None:
    grant(node, appid="hz", region="330100")
    before = snapshot(node)
    rows = len(log_rows(node))

    reply = _post(served, body, content_type)

    assert reply.status_code == 400
    found_code, found_reason = _fault(reply)
    assert found_code == code
    assert reason in found_reason
    assert "root:" not in reply.text  # nothing of /etc/passwd
    assert snapshot(node) == before
    assert len(log_rows(node)) == rows  # an unidentified caller: counted, not logged


def test_a_50_mb_envelope_is_refused_before_it_is_read(node: Node, served: Served) -> None:
    grant(node, appid="hz", region="330100")
    before = snapshot(node)
    filler = b"x" * (50 * 1024 * 1024)
    body = _envelope({"appid": "hz"}).replace(b"<t:appid>", b"<t:appid>" + filler, 1)

    reply = _post(served, body)

    assert reply.status_code == 413
    assert orjson.loads(_response(reply)["datalist"])["code"] == "E_LIMIT"
    assert snapshot(node) == before
