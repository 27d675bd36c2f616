"""SOAP 1.2 envelopes of the interface (6.2 a): the six parameters in, the signed answer out.

A request's ``exchange`` element holds the same parameters as a JSON body, as text; they become
that JSON body, and the exchange judges them exactly as it judges JSON (a missing or malformed
parameter, a bad signature, a validation failure: an ordinary answer whose ``datalist`` says so).
Only XML that is not a SOAP 1.2 envelope of this interface gets a SOAP Fault.

XML is parsed with entity expansion, DTD loading and network access off, libxml2's depth limit in
force, and any document type declaration refused before parsing: no external entity can be read
and no entity can multiply (XXE, "billion laughs").
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
from lxml import etree

SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
#: The WSDL's target namespace: the ``exchange`` element and its parameters.
NAMESPACE: Final = "urn:tzsb-exchange:interface:v1.1"
MEDIA_TYPE: Final = "application/soap+xml"
CONTENT_TYPE: Final = "application/soap+xml; charset=utf-8"
#: The parameters an ``exchange`` element may hold (the JSON body's, table 7; ``timestamp`` optional).
REQUEST_FIELDS: Final = ("appid", "busicode", "action", "busilist", "random", "sign", "timestamp")
RESPONSE_FIELDS: Final = ("appid", "busicode", "datalist", "random", "sign")

#: A document type declaration anywhere, in any case: refused before the parser sees it.
_DECLARATION: Final = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        remove_comments=True,
        collect_ids=False,
    )


class SoapFault(Exception):
    """A request that is not a SOAP 1.2 envelope of this interface: answered with a Fault (HTTP 400:
    every one of these is the sender's)."""

    def __init__(self, code: str, reason_zh: str, reason_en: str) -> None:
        super().__init__(f"{code}: {reason_en}")
        #: ``Sender``, ``VersionMismatch`` or ``MustUnderstand`` (SOAP 1.2 fault codes).
        self.code = code
        self.reason_zh = reason_zh
        self.reason_en = reason_en


def is_soap(content_type: str) -> bool:
    """Whether a request's ``Content-Type`` is SOAP 1.2's."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _malformed(zh: str, en: str) -> SoapFault:
    return SoapFault("Sender", zh, en)


def parse_envelope(body: bytes, namespace: str = SOAP12) -> etree._Element:
    """The one element in the Body of a SOAP envelope of ``namespace`` (SOAP 1.2, or 1.1 for UDDI);
    raises ``SoapFault``."""
    if _DECLARATION.search(body):
        raise _malformed(
            "不接受文档类型或实体声明（DOCTYPE/ENTITY）",
            "Document type and entity declarations (DOCTYPE, ENTITY) are refused",
        )
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise _malformed(f"不是格式正确的 XML：{str(exc)[:200]}", f"Not well-formed XML: {str(exc)[:200]}") from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise _malformed("不接受文档类型声明（DOCTYPE）", "Document type declarations (DOCTYPE) are refused")
    version = "SOAP 1.2" if namespace == SOAP12 else "SOAP 1.1"
    if root.tag in (f"{{{SOAP11}}}Envelope", f"{{{SOAP12}}}Envelope") and root.tag != f"{{{namespace}}}Envelope":
        raise SoapFault(
            "VersionMismatch",
            f"此接口使用 {version}（命名空间 {namespace}）",
            f"This interface speaks {version} (namespace {namespace})",
        )
    if root.tag != f"{{{namespace}}}Envelope":
        raise _malformed(f"根元素不是 {version} Envelope", f"The root element is not a {version} Envelope")
    body_element = None
    for child in root:
        if child.tag == f"{{{namespace}}}Header":
            for block in child:
                if block.get(f"{{{namespace}}}mustUnderstand") in ("true", "1"):
                    raise SoapFault(
                        "MustUnderstand",
                        f"不理解标记为 mustUnderstand 的头部 {etree.QName(block).localname}",
                        f"Header block {etree.QName(block).localname} is marked mustUnderstand and is not understood",
                    )
        elif child.tag == f"{{{namespace}}}Body" and body_element is None:
            body_element = child
        else:
            raise _malformed(
                "Envelope 中只能有一个 Header 和一个 Body", "An Envelope holds one Header and one Body only"
            )
    operations = [] if body_element is None else list(body_element)
    if len(operations) != 1:
        raise _malformed("Body 须恰好包含一个请求元素", "The Body must hold exactly one request element")
    operation: etree._Element = operations[0]
    return operation


def parse_request(body: bytes, content_type: str) -> dict[str, str]:
    """The parameters of a SOAP 1.2 request, by name, as text; raises ``SoapFault``."""
    charset = _charset(content_type)
    if charset not in (None, "utf-8", "utf8"):
        raise _malformed(
            f"只接受 UTF-8 编码的 SOAP 消息，本次为 {charset[:32]}", f"Only UTF-8 is accepted, not {charset[:32]}"
        )
    operation = parse_envelope(body)
    if operation.tag != f"{{{NAMESPACE}}}exchange":
        raise _malformed(
            f"Body 须恰好包含一个 {{{NAMESPACE}}}exchange 元素（见 WSDL）",
            f"The Body must hold exactly one {{{NAMESPACE}}}exchange element (see the WSDL)",
        )
    fields: dict[str, str] = {}
    for element in operation:
        name = etree.QName(element)
        if name.namespace not in (None, NAMESPACE):
            raise _malformed(
                f"参数 {name.localname} 的命名空间不对", f"Parameter {name.localname} is in a foreign namespace"
            )
        if len(element):
            raise _malformed(f"参数 {name.localname} 只能是文本", f"Parameter {name.localname} must be text only")
        if name.localname in fields:
            raise _malformed(f"参数 {name.localname} 重复", f"Parameter {name.localname} appears twice")
        fields[name.localname] = element.text or ""
    return fields


def json_body(fields: dict[str, str]) -> bytes:
    """The JSON body the exchange judges: the same parameters, ``busilist`` as the exact text signed."""
    return orjson.dumps(fields)


def _envelope(content: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12})
    etree.SubElement(envelope, f"{{{SOAP12}}}Body").append(content)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def render_response(answer: bytes) -> bytes:
    """The exchange's JSON answer as a SOAP 1.2 response: ``datalist`` as the exact compact JSON text
    its ``sign`` covers."""
    parsed: dict[str, Any] = orjson.loads(answer)
    response = etree.Element(f"{{{NAMESPACE}}}exchangeResponse", nsmap={"tns": NAMESPACE})
    for name in RESPONSE_FIELDS:
        value = parsed.get(name, "")
        text = orjson.dumps(value).decode("utf-8") if name == "datalist" else str(value)
        etree.SubElement(response, f"{{{NAMESPACE}}}{name}").text = text
    return _envelope(response)


def render_fault(fault: SoapFault) -> bytes:
    """A SOAP 1.2 Fault with its reason in Chinese and English."""
    element = etree.Element(f"{{{SOAP12}}}Fault", nsmap={"env": SOAP12})
    code = etree.SubElement(element, f"{{{SOAP12}}}Code")
    etree.SubElement(code, f"{{{SOAP12}}}Value").text = f"env:{fault.code}"
    reason = etree.SubElement(element, f"{{{SOAP12}}}Reason")
    for language, text in (("zh", fault.reason_zh), ("en", fault.reason_en)):
        item = etree.SubElement(reason, f"{{{SOAP12}}}Text")
        item.set("{http://www.w3.org/XML/1998/namespace}lang", language)
        item.text = text
    return _envelope(element)
