"""SOAP 1.2 and WSDL 1.1 (6.2 a): the interface's envelopes and its description, on lxml.

A framing only: it turns an envelope into the JSON body the exchange judges and the exchange's
answer back into an envelope. It imports nothing of the node but the protocol's names.
"""

from tzsb.soap.envelope import (
    CONTENT_TYPE,
    NAMESPACE,
    SoapFault,
    is_soap,
    json_body,
    parse_request,
    render_fault,
    render_response,
)
from tzsb.soap.wsdl import SOAP_ACTION, wsdl

__all__ = [
    "CONTENT_TYPE",
    "NAMESPACE",
    "SOAP_ACTION",
    "SoapFault",
    "is_soap",
    "json_body",
    "parse_request",
    "render_fault",
    "render_response",
    "wsdl",
]
