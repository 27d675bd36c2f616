"""UDDI version 2 inquiry (6.2 a) over SOAP 1.1: this node and the providers registered with it as
businessEntities, their interfaces as businessServices, access points, and the WSDL, signing and
business-type tModels; unknown keys and unsupported requests answered with a dispositionReport."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from lxml import etree

from tests.sync.nodes import Served, serve_in_thread
from tzsb.app import Node
from tzsb.registry import ServiceSpec
from tzsb.soap import UDDI, stable_key

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS = {"u": UDDI, "s": SOAP11}
#: A tModelBag as the UDDI v2 schema wants it (at least one key): the interface's WSDL tModel.
INTERFACE_BAG = f"<tModelBag><tModelKey>{stable_key('tModel', 'interface:v1.1')}</tModelKey></tModelBag>"


@pytest.fixture
def served(node: Node) -> Iterator[Served]:
    """A province node that routes 0101 queries to a provider registered as province-devices."""
    node.services.add(
        ServiceSpec(name="province-devices", businesses=("0101",), url="http://10.1.2.3:8080/tzsb/exchange",
                    appid="node-330000", secret="s" * 16)
    )  # fmt: skip
    with serve_in_thread(node) as server:
        yield server


def inquiry(served: Served, request: str, generic: str = "2.0") -> tuple[int, etree._Element]:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP11}"><soap:Body>'
        + request.replace("GENERIC", generic).replace("XMLNS", f'xmlns="{UDDI}"')
        + "</soap:Body></soap:Envelope>"
    )
    base = served.url.rsplit("/", 2)[0]
    reply = httpx.post(
        f"{base}/uddi/inquiry", content=body.encode(), headers={"content-type": "text/xml; charset=utf-8",
                                                                "soapaction": '""'}, timeout=10,
    )  # fmt: skip
    assert reply.headers["content-type"].startswith("text/xml")
    return reply.status_code, etree.fromstring(reply.content)


def _text(root: etree._Element, path: str) -> list[str]:
    return [str(item) for item in root.xpath(path, namespaces=NS)]


def test_find_business_by_name_lists_the_node_and_its_providers(served: Served) -> None:
    status, root = inquiry(served, '<find_business generic="GENERIC" XMLNS><name>特种设备</name></find_business>')
    assert status == 200
    [answer] = root.xpath("//u:businessList", namespaces=NS)
    assert (answer.get("generic"), answer.get("operator"), answer.get("truncated")) == ("2.0", "tzsb-exchange", "false")
    assert _text(root, "//u:businessInfo/u:name/text()") == ["特种设备安全监管信息共享节点 330000（省级）"]
    services = _text(root, "//u:businessInfo/u:serviceInfos/u:serviceInfo/u:name/text()")
    assert services[0].startswith("0101 ")
    # Case-insensitive leftmost match by default; exactNameMatch and caseSensitiveMatch narrow it.
    _, provider = inquiry(served, '<find_business generic="GENERIC" XMLNS><name>PROVINCE-DEV</name></find_business>')
    assert _text(provider, "//u:businessInfo/u:name/text()") == ["province-devices"]
    _, exact = inquiry(
        served,
        '<find_business generic="GENERIC" XMLNS><findQualifiers><findQualifier>exactNameMatch</findQualifier>'
        "</findQualifiers><name>province-dev</name></find_business>",
    )
    assert _text(exact, "//u:businessInfo") == []
    _, everything = inquiry(served, '<find_business generic="GENERIC" maxRows="1" XMLNS/>')
    assert len(_text(everything, "//u:businessInfo/@businessKey")) == 1
    assert _text(everything, "//u:businessList/@truncated") == ["true"]


def test_find_service_by_business_type_and_its_binding_and_tmodels(served: Served) -> None:
    _, tmodels = inquiry(
        served, '<find_tModel generic="GENERIC" XMLNS><name>tzsb-exchange:business-types</name></find_tModel>'
    )
    [taxonomy] = _text(tmodels, "//u:tModelInfo/@tModelKey")
    assert taxonomy.startswith("uuid:")
    _, found = inquiry(
        served,
        f'<find_service generic="GENERIC" XMLNS><categoryBag><keyedReference tModelKey="{taxonomy}" '
        'keyValue="0101"/></categoryBag></find_service>',
    )
    keys = _text(found, "//u:serviceInfo/@serviceKey")
    assert len(keys) == 2  # this node's 0101 (01, 02, 03) and the provider's (04, routed)
    _, detail = inquiry(
        served, '<get_serviceDetail generic="GENERIC" XMLNS>' + "".join(f"<serviceKey>{k}</serviceKey>" for k in keys)
        + "</get_serviceDetail>",
    )  # fmt: skip
    descriptions = _text(detail, "//u:businessService/u:description/text()")
    assert sorted(descriptions) == ["动作 / actions: 01 02 03", "动作 / actions: 04"]
    assert set(_text(detail, "//u:accessPoint/text()")) == {served.url}  # a provider is reached through this node
    assert set(_text(detail, "//u:accessPoint/@URLType")) == {"http"}

    _, bindings = inquiry(
        served, f'<find_binding generic="GENERIC" serviceKey="{keys[0]}" XMLNS><tModelBag/></find_binding>'
    )
    [binding_key] = _text(bindings, "//u:bindingTemplate/@bindingKey")
    tmodel_keys = _text(bindings, "//u:tModelInstanceInfo/@tModelKey")
    _, binding = inquiry(
        served, f'<get_bindingDetail generic="GENERIC" XMLNS><bindingKey>{binding_key}</bindingKey></get_bindingDetail>'
    )
    assert _text(binding, "//u:accessPoint/text()") == [served.url]
    _, models = inquiry(
        served, '<get_tModelDetail generic="GENERIC" XMLNS>'
        + "".join(f"<tModelKey>{key}</tModelKey>" for key in tmodel_keys) + "</get_tModelDetail>",
    )  # fmt: skip
    assert _text(models, "//u:tModel/u:name/text()") == ["tzsb-exchange:interface:v1.1", "tzsb-exchange:signing"]
    [overview] = _text(models, "//u:overviewURL/text()")
    assert overview == f"{served.url}?wsdl"
    assert b"wsdl:definitions" in httpx.get(overview, timeout=10).content
    assert "wsdlSpec" in _text(models, "//u:keyedReference/@keyValue")


def test_get_business_detail_and_stable_keys(served: Served, node: Node) -> None:
    _, listed = inquiry(served, '<find_business generic="GENERIC" XMLNS/>')
    keys = _text(listed, "//u:businessInfo/@businessKey")
    _, detail = inquiry(
        served, '<get_businessDetail generic="GENERIC" XMLNS>'
        + "".join(f"<businessKey>{key}</businessKey>" for key in keys) + "</get_businessDetail>",
    )  # fmt: skip
    assert _text(detail, "//u:businessEntity/@businessKey") == keys
    assert len(_text(detail, "//u:businessEntity[1]/u:businessServices/u:businessService")) == len(node.catalog)
    # The same node and provider have the same keys after the provider is registered again.
    spec = ServiceSpec(name="province-devices", businesses=("0101",), url="http://10.9.9.9/tzsb/exchange",
                       appid="other", secret="t" * 16)  # fmt: skip
    node.services.remove("province-devices")
    node.services.add(spec)
    _, again = inquiry(served, '<find_business generic="GENERIC" XMLNS/>')
    assert _text(again, "//u:businessInfo/@businessKey") == keys


@pytest.mark.parametrize(
    ("request_xml", "generic", "errno", "code"),
    [
        ('<get_businessDetail generic="GENERIC" XMLNS><businessKey>NOPE</businessKey></get_businessDetail>', "2.0",
         "10210", "E_invalidKeyPassed"),
        ('<get_tModelDetail generic="GENERIC" XMLNS><tModelKey>uuid:00</tModelKey></get_tModelDetail>', "2.0",
         "10210", "E_invalidKeyPassed"),
        ('<find_binding generic="GENERIC" serviceKey="NOPE" XMLNS>' + INTERFACE_BAG + "</find_binding>", "2.0",
         "10210", "E_invalidKeyPassed"),
        ('<find_business generic="GENERIC" XMLNS/>', "1.0", "10040", "E_unrecognizedVersion"),
        ('<save_business generic="GENERIC" XMLNS/>', "2.0", "10050", "E_unsupported"),
        ('<find_business generic="GENERIC" XMLNS><findQualifiers><findQualifier>soundex</findQualifier>'
         "</findQualifiers></find_business>", "2.0", "10050", "E_unsupported"),
        ('<find_business generic="GENERIC" XMLNS><name>' + "x" * 300 + "</name></find_business>", "2.0", "10020",
         "E_nameTooLong"),
    ],
    ids=["unknown-business", "unknown-tmodel", "unknown-service", "version-1", "publishing", "qualifier", "long-name"],
)  # fmt: skip
def test_errors_come_in_a_disposition_report(
    served: Served, request_xml: str, generic: str, errno: str, code: str
) -> None:
    status, root = inquiry(served, request_xml, generic)
    assert status == 500
    assert _text(root, "//s:Fault/faultcode/text()") == ["soap:Client"]
    assert _text(root, "//u:dispositionReport/u:result/@errno") == [errno]
    assert _text(root, "//u:errInfo/@errCode") == [code]


def test_malformed_or_hostile_envelopes_get_a_soap_11_fault(served: Served) -> None:
    base = served.url.rsplit("/", 2)[0]
    for body in (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b"<not-xml",
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><x/></e:Body></e:Envelope>',
    ):
        reply = httpx.post(f"{base}/uddi/inquiry", content=body, headers={"content-type": "text/xml"}, timeout=10)
        assert reply.status_code == 500
        root = etree.fromstring(reply.content)
        assert _text(root, "//s:Fault/faultcode/text()") == ["soap:Client"]
        assert "root:" not in reply.text
