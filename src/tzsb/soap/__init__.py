"""SOAP 1.2 and WSDL 1.1 (6.2 a): the interface's envelopes and its description, on lxml.

A framing only: it turns an envelope into the JSON body the exchange judges and the exchange's
answer back into an envelope; and it answers UDDI 2.0 inquiries (SOAP 1.1) from a registry it is
handed. It imports nothing of the node.
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
from tzsb.soap.uddi import (
    UDDI,
    UDDI_TYPES,
    Binding,
    Business,
    KeyedReference,
    Registry,
    Service,
    TModel,
    inquire,
    stable_key,
)
from tzsb.soap.wsdl import SOAP_ACTION, wsdl

__all__ = [
    "CONTENT_TYPE",
    "NAMESPACE",
    "SOAP_ACTION",
    "UDDI",
    "UDDI_TYPES",
    "Binding",
    "Business",
    "KeyedReference",
    "Registry",
    "Service",
    "SoapFault",
    "TModel",
    "inquire",
    "is_soap",
    "json_body",
    "parse_request",
    "render_fault",
    "render_response",
    "stable_key",
    "wsdl",
]
