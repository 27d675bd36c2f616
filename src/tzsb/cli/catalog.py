"""`tzsb catalog …` and `tzsb rules …`: the data elements and the rule tests of each business type."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tzsb.cli.common import console, fail, print_json
from tzsb.errors import ConfigurationError
from tzsb.protocol import BUSINESS_TYPES

catalog_cli = typer.Typer(help="The data catalog: business types and their data elements.")
rules_cli = typer.Typer(help="Data-quality rules: run each interface's rule tests.")


@catalog_cli.command("list")
def catalog_list(home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME")] = None) -> None:
    """The business types this node serves."""
    from tzsb.catalog import load_catalog

    catalog = load_catalog(home / "catalog" if home else None)
    table = Table("code", "name", "primary key", "region field", "fields")
    for code in catalog:
        business = catalog[code]
        table.add_row(code, business.name, business.primary_key, business.region_field, str(len(business.fields)))
    console.print(table)


@catalog_cli.command("show")
def catalog_show(
    code: str,
    home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The data elements of one business type."""
    from tzsb.catalog import load_catalog

    catalog = load_catalog(home / "catalog" if home else None)
    if code not in catalog:
        known = ", ".join(catalog) or "none"
        hint = f" ({BUSINESS_TYPES[code]} has no data elements yet)" if code in BUSINESS_TYPES else ""
        raise fail(f"business type {code} is not in the catalog{hint}; known: {known}")
    business = catalog[code]
    if as_json:
        print_json(
            {
                "code": business.code,
                "name": business.name,
                "primary_key": business.primary_key,
                "region_field": business.region_field,
                "timestamp_field": business.timestamp_field,
                "fields": [
                    {
                        "code": spec.code,
                        "name": spec.name,
                        "type": spec.type.value,
                        "length": spec.length,
                        "required": spec.required,
                        "pattern": spec.pattern,
                        "codes": dict(spec.codes),
                        "codes_source": spec.codes_source,
                        "legacy_codes": dict(spec.legacy_codes),
                        "sensitive": spec.sensitive,
                        "description": spec.description,
                    }
                    for spec in business.fields
                ],
            }
        )
        return
    table = Table("code", "name", "type", "len", "req", "sensitive", "pattern / codes", title=f"{code} {business.name}")
    for spec in business.fields:
        rule = spec.pattern or ", ".join(f"{k}={v}" for k, v in spec.codes.items())
        if spec.legacy_codes:
            rule += f"; legacy (warned): {', '.join(spec.legacy_codes)}"
        if spec.codes_source:
            rule += f"\nsource: {spec.codes_source}"
        table.add_row(
            spec.code,
            spec.name,
            spec.type.value,
            str(spec.length or ""),
            "Y" if spec.required else "",
            "Y" if spec.sensitive else "",
            rule,
        )
    console.print(table)


@catalog_cli.command("docs")
def catalog_docs(
    out: Annotated[Path, typer.Option(help="Folder for the generated pages.")] = Path("docs/catalog"),
    home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME")] = None,
) -> None:
    """Write a reference page per business type (Chinese names first) and an index."""
    from tzsb.catalog import catalog_pages, load_catalog

    out.mkdir(parents=True, exist_ok=True)
    generated = catalog_pages(load_catalog(home / "catalog" if home else None))
    for name, text in generated.items():
        (out / name).write_text(text, encoding="utf-8")
    console.print(f"wrote {len(generated)} pages to {out}")


@catalog_cli.command("samples")
def catalog_samples(
    out: Annotated[Path, typer.Option(help="Folder for the sample files.")] = Path("examples"),
    check: Annotated[bool, typer.Option("--check", help="Only compare; exit 1 when the folder differs.")] = False,
) -> None:
    """Write a few valid records of every business type, consistent with each other (a busilist file each)."""
    from tzsb.catalog import samples

    if check:
        found = samples.differences(out)
        if found:
            listed = "; ".join(found)
            raise fail(f"{out} differs from the samples ({listed}); rewrite it: tzsb catalog samples --out {out}")
        console.print(f"{out} holds the samples")
        return
    written = samples.write_samples(out)
    console.print(f"wrote {len(written)} files to {out}")


@rules_cli.command("test")
def rules_test(
    home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME", help="Include <home>/rules.json.")] = None,
    busicode: Annotated[
        list[str] | None, typer.Option(help="Only these business types (4 digits, or a 6-digit busicode).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing cases too.")] = False,
) -> None:
    """Run the rule tests of every interface; exit 1 when any fails (that interface stays disabled)."""
    from tzsb.catalog import load_catalog
    from tzsb.clock import SystemClock
    from tzsb.rules import RULES_FILE, compile_rules

    try:
        catalog = load_catalog(home / "catalog" if home else None)
        compiled = compile_rules(catalog, home / RULES_FILE if home else None, SystemClock())
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    wanted = {code[-4:] for code in busicode or ()} or set(catalog)
    failed = 0
    table = Table("business", "cases", "passed", "state")
    for code in sorted(wanted):
        if code not in compiled.results:
            raise fail(f"business type {code} is not in the catalog")
        results = compiled.results[code]
        bad = [result for result in results if not result.passed]
        failed += len(bad)
        table.add_row(
            f"{code} {catalog[code].name}", str(len(results)), str(len(results) - len(bad)),
            "[red]disabled[/red]" if bad else "[green]enabled[/green]",
        )  # fmt: skip
        for result in results if verbose else bad:
            console.print(("  ok    " if result.passed else "  FAIL  ") + result.detail)
    console.print(table)
    if failed:
        raise typer.Exit(code=1)
