"""The UDDI v2 registry a node answers inquiries from (6.2 a), built from the node as it is now.

businessEntity: this node, and each provider registered with it (``tzsb service``);
businessService: one interface — a business type, with its actions; bindingTemplate: its access
point (a provider's interfaces are reached through this node, which routes them); tModels: the
interface's WSDL (``overviewURL``), the signing scheme (6.5) and the business types of table 7 as
a categorization (each businessService carries its code). Keys are stable UUIDs.
"""

from __future__ import annotations

from tzsb.app import Node
from tzsb.soap import UDDI_TYPES, Binding, Business, KeyedReference, Registry, Service, TModel, stable_key

_LEVELS = {"county": "县级", "city": "市级", "province": "省级", "national": "国家级"}


def registry(node: Node, base_url: str) -> Registry:
    """The registry of ``node`` served at ``base_url`` (scheme, host and port, no trailing slash)."""
    settings = node.settings
    access_point = base_url + settings.service_path
    interface = TModel(
        stable_key("tModel", "interface:v1.1"),
        "tzsb-exchange:interface:v1.1",
        "特种设备安全监管信息共享接口（试行 V1.1）的 WSDL / the interface's WSDL 1.1 (SOAP 1.2; JSON at the same URL)",
        access_point + "?wsdl",
        (KeyedReference(UDDI_TYPES, "uddi-org:types", "wsdlSpec"),),
    )
    signing = TModel(
        stable_key("tModel", "signing:v1.1"),
        "tzsb-exchange:signing",
        "签名（规范 6.5）：参数按名排序以 & 连接，末尾加 key=密钥，MD5、SM4、SM3 或 HMAC-SM3，大写十六进制 / "
        "sign (spec 6.5): the parameters sorted by name, joined by &, then key=<secret>; MD5, SM4, SM3 or HMAC-SM3, "
        "upper-case hex",
        None,
        (KeyedReference(UDDI_TYPES, "uddi-org:types", "specification"),),
    )
    taxonomy = TModel(
        stable_key("tModel", "business-types"),
        "tzsb-exchange:business-types",
        "业务类型（规范表 7） / business types (table 7), the keyValue of each interface's keyedReference",
        None,
        (KeyedReference(UDDI_TYPES, "uddi-org:types", "categorization"),),
    )
    routed = [service for service in node.services.list() if service.enabled]
    routed_codes = {(code, action) for service in routed for code in service.businesses for action in service.actions}

    def interface_service(owner: str, scope: str, code: str, actions: list[str], note: str) -> Service:
        business_type = node.catalog[code]
        key = stable_key("service", f"{scope}:{code}")
        binding = Binding(
            stable_key("binding", f"{scope}:{code}"), key, access_point, note, (interface.key, signing.key)
        )
        return Service(
            key,
            owner,
            f"{code} {business_type.name}",
            f"动作 / actions: {' '.join(actions)}",
            (binding,),
            (KeyedReference(taxonomy.key, business_type.name, code),),
        )

    level = _LEVELS.get(settings.level, settings.level)
    own_key = stable_key("business", f"node:{settings.level}:{settings.region}")
    own_services = []
    for code in node.catalog:
        actions = [action for action in ("01", "02", "03", "04") if (code, action) not in routed_codes]
        if actions:
            own_services.append(
                interface_service(
                    own_key, f"node:{settings.region}", code, actions, "本节点的接口 / this node's interface"
                )
            )
    businesses = [
        Business(
            own_key,
            f"特种设备安全监管信息共享节点 {settings.region}（{level}）",
            f"special-equipment safety regulators' data exchange node, {settings.level} {settings.region}",
            tuple(own_services),
        )
    ]
    for service in routed:
        key = stable_key("business", f"provider:{service.name}")
        businesses.append(
            Business(
                key,
                service.name,
                f"经本节点转发的数据提供方 / a provider reached through this node ({service.appid})",
                tuple(
                    interface_service(
                        key,
                        f"provider:{service.name}",
                        code,
                        list(service.actions),
                        f"由本节点转发至 {service.name} / routed by this node to {service.name}",
                    )
                    for code in service.businesses
                    if code in node.catalog
                ),
            )
        )
    return Registry(tuple(businesses), (interface, signing, taxonomy))
