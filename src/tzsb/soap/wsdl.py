"""The WSDL 1.1 description of the interface: one document/literal operation ``exchange`` over SOAP 1.2."""

from __future__ import annotations

from typing import Final
from xml.sax.saxutils import quoteattr

from tzsb.soap.envelope import NAMESPACE, REQUEST_FIELDS, RESPONSE_FIELDS

#: The SOAP action of the one operation (carried in SOAP 1.2's Content-Type ``action`` parameter).
SOAP_ACTION: Final = f"{NAMESPACE}#exchange"

_DOCUMENTATION: Final = {
    "appid": "应用标识 / application id",
    "busicode": "业务编码：用途(2)+业务类型(4) / purpose and business type",
    "action": "01 新增 add, 02 修改 modify, 03 删除 delete, 04 查询 query",
    "busilist": "业务数据：JSON 数组文本，签名覆盖的原文 / the JSON array text the signature covers",
    "random": "请求唯一标识 / unique request id",
    "sign": "签名 / signature (MD5, SM4, SM3 or HMAC-SM3, as registered)",
    "timestamp": "可选：签名时间（Unix 秒） / optional signed Unix time",
    "datalist": "结果：JSON 对象文本，签名覆盖的原文 / the JSON object text the signature covers",
}


_OPTIONAL: Final = ' minOccurs="0"'


def _sequence(element: str, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> str:
    """A schema element whose type is a sequence of the string parameters ``names``."""
    parts = "".join(
        f'<xsd:element name="{name}" type="xsd:string"{_OPTIONAL if name in optional else ""}>'
        f"<xsd:annotation><xsd:documentation>{_DOCUMENTATION[name]}</xsd:documentation></xsd:annotation>"
        "</xsd:element>"
        for name in names
    )
    sequence = f"<xsd:complexType><xsd:sequence>{parts}</xsd:sequence></xsd:complexType>"
    return f'<xsd:element name="{element}">{sequence}</xsd:element>'


def wsdl(location: str) -> bytes:
    """The WSDL of the interface served at ``location`` (an absolute URL)."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions name="TzsbExchange" targetNamespace="{NAMESPACE}"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="{NAMESPACE}">
  <wsdl:documentation>特种设备安全监管信息共享接口（试行 V1.1）/ special-equipment safety regulators' data exchange
  interface. Parameters and answer as the JSON interface; sign and verify over the exact busilist and datalist
  texts.</wsdl:documentation>
  <wsdl:types>
    <xsd:schema targetNamespace="{NAMESPACE}" elementFormDefault="qualified">
      {_sequence("exchange", REQUEST_FIELDS, ("timestamp",))}
      {_sequence("exchangeResponse", RESPONSE_FIELDS)}
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="exchangeRequest"><wsdl:part name="parameters" element="tns:exchange"/></wsdl:message>
  <wsdl:message name="exchangeResponse"><wsdl:part name="parameters" element="tns:exchangeResponse"/></wsdl:message>
  <wsdl:portType name="ExchangePortType">
    <wsdl:operation name="exchange">
      <wsdl:input message="tns:exchangeRequest"/>
      <wsdl:output message="tns:exchangeResponse"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="ExchangeSoap12Binding" type="tns:ExchangePortType">
    <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="exchange">
      <soap12:operation soapAction="{SOAP_ACTION}" soapActionRequired="false"/>
      <wsdl:input><soap12:body use="literal"/></wsdl:input>
      <wsdl:output><soap12:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="ExchangeService">
    <wsdl:port name="ExchangeSoap12Port" binding="tns:ExchangeSoap12Binding">
      <soap12:address location={quoteattr(location)}/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
""".encode()
