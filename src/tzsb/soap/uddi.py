"""UDDI version 2 inquiry (6.2 a): ``find_*`` and ``get_*Detail`` over SOAP 1.1, as UDDI v2 specifies.

The registry it answers from is handed in (``Registry``): the web layer builds it from the node —
the node itself and each provider registered with it as businessEntities, one businessService per
interface (business type, with its actions), its access point as a bindingTemplate, and tModels for
the interface's WSDL, the signing scheme and the business-type taxonomy. Publishing stays on the
command line (``tzsb service``).

Names match as UDDI v2 says: leftmost and case-insensitive, unless the find qualifiers
``exactNameMatch`` or ``caseSensitiveMatch`` say otherwise; several names match any. A categoryBag
matches when all its keyedReferences do (``orAllKeys``: any). Unknown keys in a ``get_*`` are
``E_invalidKeyPassed`` in a dispositionReport, inside a SOAP 1.1 Fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from lxml import etree

from tzsb.soap.envelope import SOAP11, SoapFault, parse_envelope

UDDI: Final = "urn:uddi-org:api_v2"
#: The operator named in every answer (UDDI v2: the registry's operator site).
OPERATOR: Final = "tzsb-exchange"
#: uddi-org:types, the taxonomy that says what a tModel is (wsdlSpec, categorization, …).
UDDI_TYPES: Final = "uuid:C1ACF26D-9672-4404-9D70-39B756E62AB4"
_NAMESPACE: Final = uuid.UUID("6f9a2a55-3c1e-4b8e-9f43-0d7a2c1b5e10")

#: UDDI v2 error numbers (dispositionReport ``errno``).
_ERRNO: Final = {
    "E_nameTooLong": 10020,
    "E_tooManyOptions": 10030,
    "E_unrecognizedVersion": 10040,
    "E_unsupported": 10050,
    "E_invalidKeyPassed": 10210,
    "E_fatalError": 10500,
}
_QUALIFIERS: Final = frozenset(
    {"exactNameMatch", "caseSensitiveMatch", "sortByNameAsc", "sortByNameDesc", "orAllKeys", "andAllKeys"}
)
_MAX_NAME: Final = 255


def stable_key(kind: str, name: str) -> str:
    """A key that stays the same for the same thing across restarts and nodes (UUID version 5)."""
    key = str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}")).upper()
    return f"uuid:{key}" if kind == "tModel" else key


@dataclass(frozen=True, slots=True)
class KeyedReference:
    tmodel_key: str
    key_name: str
    key_value: str


@dataclass(frozen=True, slots=True)
class TModel:
    key: str
    name: str
    description: str
    overview_url: str | None = None
    categories: tuple[KeyedReference, ...] = ()


@dataclass(frozen=True, slots=True)
class Binding:
    key: str
    service_key: str
    access_point: str
    description: str
    tmodel_keys: tuple[str, ...]

    @property
    def url_type(self) -> str:
        scheme = self.access_point.split(":", 1)[0].lower()
        return scheme if scheme in ("http", "https") else "other"


@dataclass(frozen=True, slots=True)
class Service:
    key: str
    business_key: str
    name: str
    description: str
    bindings: tuple[Binding, ...]
    categories: tuple[KeyedReference, ...] = ()


@dataclass(frozen=True, slots=True)
class Business:
    key: str
    name: str
    description: str
    services: tuple[Service, ...]


@dataclass(frozen=True, slots=True)
class Registry:
    businesses: tuple[Business, ...]
    tmodels: tuple[TModel, ...]
    services: dict[str, Service] = field(init=False)
    bindings: dict[str, Binding] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", {s.key: s for b in self.businesses for s in b.services})
        object.__setattr__(self, "bindings", {x.key: x for s in self.services.values() for x in s.bindings})


_T = TypeVar("_T")


class _UddiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _element(parent: etree._Element | None, name: str, text: str | None = None, **attributes: str) -> etree._Element:
    tag = f"{{{UDDI}}}{name}"
    # The default namespace: UDDI's elements are unprefixed in its examples.
    default: Any = {None: UDDI}
    element = etree.Element(tag, nsmap=default) if parent is None else etree.SubElement(parent, tag)
    for attribute, value in attributes.items():
        element.set(attribute, value)
    if text is not None:
        element.text = text
    return element


def _answer(name: str) -> etree._Element:
    return _element(None, name, generic="2.0", operator=OPERATOR)


def _children(request: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in request if child.tag == f"{{{UDDI}}}{name}"]


def _qualifiers(request: etree._Element) -> set[str]:
    found: set[str] = set()
    for holder in _children(request, "findQualifiers"):
        for item in _children(holder, "findQualifier"):
            value = (item.text or "").strip()
            if value not in _QUALIFIERS:
                raise _UddiError("E_unsupported", f"findQualifier {value[:64]!r} is not supported")
            found.add(value)
    return found


def _name_matcher(request: etree._Element, qualifiers: set[str]) -> Callable[[str], bool]:
    wanted = [(item.text or "").strip() for item in _children(request, "name")]
    if any(len(name) > _MAX_NAME for name in wanted):
        raise _UddiError("E_nameTooLong", f"a name is longer than {_MAX_NAME} characters")
    if not wanted:
        return lambda _name: True
    sensitive = "caseSensitiveMatch" in qualifiers
    exact = "exactNameMatch" in qualifiers

    def fold(text: str) -> str:
        return text if sensitive else text.casefold()

    def matches(name: str) -> bool:
        return any(fold(name) == fold(want) if exact else fold(name).startswith(fold(want)) for want in wanted)

    return matches


def _category_matcher(request: etree._Element, qualifiers: set[str]) -> Callable[[Sequence[KeyedReference]], bool]:
    references = [
        (item.get("tModelKey", "").upper(), item.get("keyValue", ""))
        for bag in _children(request, "categoryBag")
        for item in _children(bag, "keyedReference")
    ]
    if not references:
        return lambda _categories: True
    combine = any if "orAllKeys" in qualifiers else all

    def matches(categories: Sequence[KeyedReference]) -> bool:
        held = {(reference.tmodel_key.upper(), reference.key_value) for reference in categories}
        values = {reference.key_value for reference in categories}
        return combine((key, value) in held if key else value in values for key, value in references)

    return matches


def _tmodel_keys(request: etree._Element) -> set[str]:
    return {(item.text or "").strip().upper() for bag in _children(request, "tModelBag") for item in bag}


def _sorted_by_name(items: list[Any], qualifiers: set[str]) -> None:
    if "sortByNameDesc" in qualifiers:
        items.sort(key=lambda item: item.name, reverse=True)
    elif "sortByNameAsc" in qualifiers:
        items.sort(key=lambda item: item.name)


def _limited(request: etree._Element, answer: etree._Element, items: list[_T]) -> list[_T]:
    raw = request.get("maxRows")
    if raw is not None and raw.strip().isdigit() and int(raw) < len(items):
        answer.set("truncated", "true")
        return items[: int(raw)]
    answer.set("truncated", "false")
    return items


def _add_service_info(parent: etree._Element, service: Service) -> None:
    info = _element(parent, "serviceInfo", serviceKey=service.key, businessKey=service.business_key)
    _element(info, "name", service.name)


def _add_binding(parent: etree._Element, binding: Binding) -> None:
    template = _element(parent, "bindingTemplate", serviceKey=binding.service_key, bindingKey=binding.key)
    _element(template, "description", binding.description)
    _element(template, "accessPoint", binding.access_point, URLType=binding.url_type)
    details = _element(template, "tModelInstanceDetails")
    for key in binding.tmodel_keys:
        _element(details, "tModelInstanceInfo", tModelKey=key)


def _add_categories(parent: etree._Element, categories: Sequence[KeyedReference]) -> None:
    if categories:
        bag = _element(parent, "categoryBag")
        for reference in categories:
            _element(
                bag, "keyedReference", tModelKey=reference.tmodel_key, keyName=reference.key_name,
                keyValue=reference.key_value,
            )  # fmt: skip


def _add_service(parent: etree._Element, service: Service) -> None:
    element = _element(parent, "businessService", serviceKey=service.key, businessKey=service.business_key)
    _element(element, "name", service.name)
    _element(element, "description", service.description)
    templates = _element(element, "bindingTemplates")
    for binding in service.bindings:
        _add_binding(templates, binding)
    _add_categories(element, service.categories)


def _add_tmodel(parent: etree._Element, tmodel: TModel) -> None:
    element = _element(parent, "tModel", tModelKey=tmodel.key, operator=OPERATOR)
    _element(element, "name", tmodel.name)
    _element(element, "description", tmodel.description)
    if tmodel.overview_url is not None:
        _element(_element(element, "overviewDoc"), "overviewURL", tmodel.overview_url)
    _add_categories(element, tmodel.categories)


def _find_business(request: etree._Element, registry: Registry) -> etree._Element:
    qualifiers = _qualifiers(request)
    named = _name_matcher(request, qualifiers)
    wanted_tmodels = _tmodel_keys(request)
    categorised = _category_matcher(request, qualifiers)
    found = [
        business
        for business in registry.businesses
        if named(business.name)
        and categorised([reference for service in business.services for reference in service.categories])
        and wanted_tmodels <= {key for s in business.services for b in s.bindings for key in b.tmodel_keys}
    ]
    _sorted_by_name(found, qualifiers)
    answer = _answer("businessList")
    infos = _element(answer, "businessInfos")
    for business in _limited(request, answer, found):
        info = _element(infos, "businessInfo", businessKey=business.key)
        _element(info, "name", business.name)
        _element(info, "description", business.description)
        services = _element(info, "serviceInfos")
        for service in business.services:
            _add_service_info(services, service)
    return answer


def _find_service(request: etree._Element, registry: Registry) -> etree._Element:
    qualifiers = _qualifiers(request)
    business_key = request.get("businessKey")
    if business_key is not None and all(business.key != business_key for business in registry.businesses):
        raise _UddiError("E_invalidKeyPassed", f"businessKey {business_key[:64]} is not known")
    named = _name_matcher(request, qualifiers)
    categorised = _category_matcher(request, qualifiers)
    wanted_tmodels = _tmodel_keys(request)
    found = [
        service
        for business in registry.businesses
        if business_key in (None, business.key)
        for service in business.services
        if named(service.name)
        and categorised(service.categories)
        and wanted_tmodels <= {key for binding in service.bindings for key in binding.tmodel_keys}
    ]
    _sorted_by_name(found, qualifiers)
    answer = _answer("serviceList")
    infos = _element(answer, "serviceInfos")
    for service in _limited(request, answer, found):
        _add_service_info(infos, service)
    return answer


def _find_binding(request: etree._Element, registry: Registry) -> etree._Element:
    _qualifiers(request)
    service_key = request.get("serviceKey", "")
    service = registry.services.get(service_key)
    if service is None:
        raise _UddiError("E_invalidKeyPassed", f"serviceKey {service_key[:64]} is not known")
    wanted = _tmodel_keys(request)
    answer = _answer("bindingDetail")
    found = [binding for binding in service.bindings if wanted <= set(binding.tmodel_keys)]
    for binding in _limited(request, answer, found):
        _add_binding(answer, binding)
    return answer


def _find_tmodel(request: etree._Element, registry: Registry) -> etree._Element:
    qualifiers = _qualifiers(request)
    named = _name_matcher(request, qualifiers)
    categorised = _category_matcher(request, qualifiers)
    found = [tmodel for tmodel in registry.tmodels if named(tmodel.name) and categorised(tmodel.categories)]
    _sorted_by_name(found, qualifiers)
    answer = _answer("tModelList")
    infos = _element(answer, "tModelInfos")
    for tmodel in _limited(request, answer, found):
        _element(_element(infos, "tModelInfo", tModelKey=tmodel.key), "name", tmodel.name)
    return answer


def _keys(request: etree._Element, name: str) -> list[str]:
    keys = [(item.text or "").strip() for item in _children(request, name)]
    if not keys:
        raise _UddiError("E_invalidKeyPassed", f"no {name} given")
    return keys


def _looked_up(keys: Iterable[str], known: dict[str, _T], kind: str) -> list[_T]:
    found = []
    for key in keys:
        item = known.get(key) if key in known else known.get(key.upper())
        if item is None:
            raise _UddiError("E_invalidKeyPassed", f"{kind} {key[:64]} is not known")
        found.append(item)
    return found


def _get_business_detail(request: etree._Element, registry: Registry) -> etree._Element:
    known = {business.key: business for business in registry.businesses}
    answer = _answer("businessDetail")
    for business in _looked_up(_keys(request, "businessKey"), known, "businessKey"):
        entity = _element(answer, "businessEntity", businessKey=business.key, operator=OPERATOR)
        _element(entity, "name", business.name)
        _element(entity, "description", business.description)
        services = _element(entity, "businessServices")
        for service in business.services:
            _add_service(services, service)
    return answer


def _get_service_detail(request: etree._Element, registry: Registry) -> etree._Element:
    answer = _answer("serviceDetail")
    for service in _looked_up(_keys(request, "serviceKey"), registry.services, "serviceKey"):
        _add_service(answer, service)
    return answer


def _get_binding_detail(request: etree._Element, registry: Registry) -> etree._Element:
    answer = _answer("bindingDetail")
    for binding in _looked_up(_keys(request, "bindingKey"), registry.bindings, "bindingKey"):
        _add_binding(answer, binding)
    return answer


def _get_tmodel_detail(request: etree._Element, registry: Registry) -> etree._Element:
    known = {tmodel.key: tmodel for tmodel in registry.tmodels}
    answer = _answer("tModelDetail")
    for tmodel in _looked_up(_keys(request, "tModelKey"), known, "tModelKey"):
        _add_tmodel(answer, tmodel)
    return answer


_INQUIRIES: Final[dict[str, Callable[[etree._Element, Registry], etree._Element]]] = {
    "find_business": _find_business,
    "find_service": _find_service,
    "find_binding": _find_binding,
    "find_tModel": _find_tmodel,
    "get_businessDetail": _get_business_detail,
    "get_serviceDetail": _get_service_detail,
    "get_bindingDetail": _get_binding_detail,
    "get_tModelDetail": _get_tmodel_detail,
}


def _envelope(content: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
    etree.SubElement(envelope, f"{{{SOAP11}}}Body").append(content)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def _fault(faultcode: str, faultstring: str, report: etree._Element | None = None) -> bytes:
    fault = etree.Element(f"{{{SOAP11}}}Fault", nsmap={"soap": SOAP11})
    etree.SubElement(fault, "faultcode").text = f"soap:{faultcode}"
    etree.SubElement(fault, "faultstring").text = faultstring
    if report is not None:
        etree.SubElement(fault, "detail").append(report)
    return _envelope(fault)


def _disposition(error: _UddiError) -> bytes:
    report = _answer("dispositionReport")
    result = _element(report, "result", errno=str(_ERRNO[error.code]))
    _element(result, "errInfo", error.message, errCode=error.code)
    return _fault("Client", "Client Error", report)


def inquire(body: bytes, registry: Registry) -> tuple[int, bytes]:
    """Answer one inquiry: (HTTP status, SOAP 1.1 envelope). Faults are 500, as SOAP 1.1 over HTTP says."""
    try:
        request = parse_envelope(body, SOAP11)
    except SoapFault as fault:
        return 500, _fault("Client", f"{fault.reason_en} / {fault.reason_zh}")
    name = etree.QName(request).localname if request.tag.startswith(f"{{{UDDI}}}") else ""
    inquiry = _INQUIRIES.get(name)
    try:
        if inquiry is None:
            raise _UddiError("E_unsupported", f"{etree.QName(request).localname[:64]} is not a UDDI v2 inquiry")
        if request.get("generic") != "2.0":
            raise _UddiError("E_unrecognizedVersion", f"generic {request.get('generic', '')[:16]!r}: this is UDDI 2.0")
        return 200, _envelope(inquiry(request, registry))
    except _UddiError as error:
        return 500, _disposition(error)
