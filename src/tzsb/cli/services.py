"""`tzsb service …`: providers this node routes requests to (5.2.2)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tzsb.cli.common import HomeOption, console, node_session, print_json
from tzsb.protocol import SignAlgorithm

services_cli = typer.Typer(
    help="Providers: a business type's actions answered by another node, routed through this one."
)


@services_cli.command("add")
def service_add(
    home: HomeOption,
    name: Annotated[str, typer.Argument(help="The service's name, e.g. province-persons.")],
    business: Annotated[list[str], typer.Option(help="Business type it serves (repeat), e.g. 0201.")],
    url: Annotated[str, typer.Option(help="The provider's interface, e.g. https://provider.example/tzsb/exchange.")],
    appid: Annotated[str, typer.Option(help="The app the provider issued to this node.")],
    secret: Annotated[
        str,
        typer.Option(
            envvar="TZSB_SERVICE_SECRET",
            prompt="The app's secret (input hidden)",
            hide_input=True,
            help="The app's secret (or TZSB_SERVICE_SECRET; asked for when not given). Sealed, never shown again.",
            show_default=False,
        ),
    ],
    action: Annotated[list[str] | None, typer.Option(help="Action routed (repeat): 01 02 03 04; default 04.")] = None,
    sign: Annotated[
        SignAlgorithm, typer.Option(help="Sign algorithm the provider set for the app.")
    ] = SignAlgorithm.MD5,
    upstream_purpose: Annotated[
        str | None, typer.Option(help="Purpose (table 6) the provider is asked with; default: the requester's.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the provider's answer.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Route a business type's actions to a provider instead of answering them from this node's store."""
    from tzsb.registry import ServiceSpec

    spec = ServiceSpec(
        name=name, businesses=tuple(business), url=url, appid=appid, secret=secret, actions=tuple(action or ("04",)),
        sign_algorithm=sign, upstream_purpose=upstream_purpose, timeout_seconds=timeout,
    )  # fmt: skip
    with node_session(home) as node:
        service = node.services.add(spec)
    if as_json:
        print_json(service.public())
        return
    console.print(
        f"service {service.name} added: {', '.join(service.businesses)} / {', '.join(service.actions)} → "
        f"{service.url} as {service.appid}"
    )


@services_cli.command("list")
def service_list(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the services of this node."""
    with node_session(home) as node:
        described = [service.public() for service in node.services.list()]
    if as_json:
        print_json(described)
        return
    table = Table("name", "business", "actions", "url", "appid", "enabled", "breaker")
    for item in described:
        table.add_row(
            item["name"], " ".join(item["businesses"]), " ".join(item["actions"]), item["url"], item["appid"],
            "yes" if item["enabled"] else "no", item["breaker_state"],
        )  # fmt: skip
    console.print(table)


@services_cli.command("show")
def service_show(home: HomeOption, name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one service (never its secret), with its circuit breaker's state and last failure."""
    with node_session(home) as node:
        described = node.services.require(name).public()
    if as_json:
        print_json(described)
        return
    for key, value in described.items():
        console.print(f"{key}: {value}")


@services_cli.command("disable")
def service_disable(home: HomeOption, name: str) -> None:
    """Stop routing to the service (its requests are answered from this node's store again)."""
    with node_session(home) as node:
        node.services.set_enabled(name, False)
    console.print(f"service {name} disabled")


@services_cli.command("enable")
def service_enable(home: HomeOption, name: str) -> None:
    """Route to the service again."""
    with node_session(home) as node:
        node.services.set_enabled(name, True)
    console.print(f"service {name} enabled")


@services_cli.command("remove")
def service_remove(home: HomeOption, name: str) -> None:
    """Forget the service and its sealed secret."""
    with node_session(home) as node:
        node.services.remove(name)
    console.print(f"service {name} removed")
