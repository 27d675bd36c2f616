"""``tzsb demo``: a sandbox node — the sample records loaded, a demo app per sign algorithm, and
commands to paste.

The node is made as ``tzsb init`` makes one, in a new folder beside the home that becomes the home
only once everything in it is ready: a failure leaves nothing behind. The sample records
(:mod:`tzsb.catalog.samples`) go in through the node's own pipeline, as signed add requests of an
app of the node's own regulator (purpose 11), which is disabled afterwards; so they are stored, with
their change sequence and log rows, exactly as a normal add stores them. The demo apps are a
county's (the samples' county), one per sign algorithm, granted by purpose 14 every business type
the node's direction rules let a county exchange with it both ways, and allowed to change the sample
records.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from tzsb.catalog import samples
from tzsb.cli.common import HomeOption, create_home, fail, print_json
from tzsb.errors import ConfigurationError, ExchangeError
from tzsb.protocol import RESULT_SUCCESS, Action, SignAlgorithm, covers, is_region_code

if TYPE_CHECKING:
    from tzsb.app import Node

LOADER = "demo-loader"
#: The demo apps, one per sign algorithm; HMAC-SM3 last, the one recommended for new integrations.
DEMO_APPS = (
    ("demo-md5", SignAlgorithm.MD5),
    ("demo-sm4", SignAlgorithm.SM4),
    ("demo-sm3", SignAlgorithm.SM3),
    ("demo-hmac-sm3", SignAlgorithm.HMAC_SM3),
)
#: Levels a county's apps exchange with by purpose 14 (省级—所辖下级).
NODE_LEVELS = ("province", "city")
#: What each demo app's printed query asks for, in order of preference among its grants.
QUERY_TYPES = ("0101", "0103", "0401", "0301", "0208", "0102")
ALL_ACTIONS = frozenset(action.value for action in Action)


@dataclass(frozen=True, slots=True)
class DemoApp:
    appid: str
    sign: SignAlgorithm
    secret: str
    busicodes: tuple[str, ...]


class DemoError(Exception):
    """The sandbox could not be made; the message says why and what to do."""


def demo(
    home: HomeOption,
    level: Annotated[str, typer.Option(help=f"Node level: {' or '.join(NODE_LEVELS)}.")] = "province",
    region: Annotated[str, typer.Option(help="GB/T 2260 region code of the node; it must contain 330106.")] = "330000",
    port: Annotated[int, typer.Option(help="Port of `tzsb serve` in the printed commands.")] = 8080,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: apps, secrets, commands.")] = False,
) -> None:
    """Create a sandbox node: the sample records loaded, an app per sign algorithm; prints secrets once."""
    area = samples.AREA
    if level not in NODE_LEVELS:
        raise fail(f"--level must be {' or '.join(NODE_LEVELS)}: the demo apps are a county's ({area}), and a county "
                   "exchanges with its province or city node")  # fmt: skip
    if not is_region_code(region) or not covers(region, area):
        raise fail(f"--region must be a 6-digit GB/T 2260 code containing {area} ({samples.AREA_NAME}), where the "
                   "sample records lie: 330000 (province) or 330100 (city)")  # fmt: skip
    if not 1 <= port <= 65535:
        raise fail("--port must be between 1 and 65535")
    if (home / "tzsb.toml").exists() or (home / "master.key").exists():
        raise fail(f"{home} already holds a node; choose another --home (nothing was changed)")
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise fail(f"{home} is not an empty folder; tzsb demo makes a new one: choose another --home "
                   "(nothing was changed)")  # fmt: skip
    try:
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", suffix=".demo", dir=home.parent))
        create_home(staging)  # 0700, as `tzsb init` makes a home: renamed into place, it stays so
    except OSError as exc:
        raise fail(f"cannot create a folder beside {home}: {exc}") from None
    try:
        url, loaded, apps = _build(staging, level, region, port)
        if home.exists():
            home.rmdir()  # empty, checked above
        staging.rename(home)
    except (DemoError, ConfigurationError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot create the node in {home}: {exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    commands = _commands(home, url, apps)
    serve = f"tzsb serve --home {shlex.quote(str(home))} --port {port}"
    md5 = next(app for app in apps if app.sign is SignAlgorithm.MD5)
    curl = _curl(url, md5)
    if as_json:
        print_json({
            "home": str(home), "level": level, "region": region, "url": url, "serve": serve, "records": loaded,
            "apps": [
                {"appid": app.appid, "sign": app.sign.value, "secret": app.secret, "region": area, "level": "county",
                 "busicodes": list(app.busicodes), "actions": sorted(ALL_ACTIONS)}
                for app in apps
            ],
            "commands": commands, "curl": curl,
        })  # fmt: skip
        return
    _print_text(home, level, region, loaded, apps, serve, commands, curl)


def _build(staging: Path, level: str, region: str, port: int) -> tuple[str, dict[str, int], list[DemoApp]]:
    """Make the node in ``staging``: settings, master key, database, sample records, apps."""
    from tzsb.app import build_node
    from tzsb.registry import MasterKey
    from tzsb.settings import load_settings, write_config

    settings = load_settings(staging, environ={}, level=level, region=region)
    write_config(settings)
    MasterKey.generate().write(settings.master_key_path)
    node = build_node(settings)
    try:
        loaded = _load_samples(node, level, region)
        apps = _create_apps(node)
    finally:
        node.close()
    samples.write_samples(staging / "examples")
    return f"http://{settings.host}:{port}{settings.service_path}", loaded, apps


def _load_samples(node: Node, level: str, region: str) -> dict[str, int]:
    """Add every sample record through the node's pipeline, as the node's own regulator (purpose 11)."""
    from tzsb.client import build_request
    from tzsb.registry import AppSpec

    records = samples.sample_records()
    _, secret = node.registry.create(
        AppSpec(
            appid=LOADER, region=region, level=level, busicodes=frozenset(f"11{code}" for code in records),
            actions=frozenset({Action.ADD.value}), sign_algorithm=SignAlgorithm.HMAC_SM3,
            name="tzsb demo: added the sample records (disabled)",
        )
    )  # fmt: skip
    for code, batch in records.items():
        request = build_request(LOADER, secret, SignAlgorithm.HMAC_SM3, f"11{code}", Action.ADD.value, batch)
        answer = orjson.loads(node.exchange.handle(orjson.dumps(request), "application/json", "127.0.0.1"))
        datalist = answer.get("datalist") or {}
        if datalist.get("result") != RESULT_SUCCESS:
            raise DemoError(
                f"the node refused the sample records of {code} ({datalist.get('code')}: {datalist.get('message')}); "
                "nothing was created. The samples pass the shipped rules: please report this message"
            )
    node.registry.set_enabled(LOADER, False)
    return {code: len(batch) for code, batch in records.items()}


def _granted_types(node: Node) -> list[str]:
    """Business types a county app in the samples' area may add, change, delete and query at this node
    by purpose 14, as the node's direction rules decide."""
    from tzsb.registry import DIRECTIONS_FILE, DirectionPolicy, Party, load_directions

    settings = node.settings
    policy = DirectionPolicy(Party(settings.level, settings.region), load_directions(settings.home / DIRECTIONS_FILE))
    caller = Party("county", samples.AREA)
    granted = []
    for code in samples.LOAD_ORDER:
        try:
            for action in Action:
                policy.check("14", code, action, caller)
        except ExchangeError:
            continue
        granted.append(code)
    return granted


def _create_apps(node: Node) -> list[DemoApp]:
    from tzsb.registry import AppSpec

    types = _granted_types(node)
    if not types:
        raise DemoError(
            f"this node's direction rules let a county app ({samples.AREA}) exchange no business type with a "
            f"{node.settings.level} node by purpose 14; try --level province --region 330000"
        )
    busicodes = tuple(f"14{code}" for code in types)
    apps = []
    for appid, algorithm in DEMO_APPS:
        _, secret = node.registry.create(
            AppSpec(
                appid=appid, region=samples.AREA, level="county", busicodes=frozenset(busicodes),
                actions=ALL_ACTIONS, sign_algorithm=algorithm, overrides=frozenset(types),
                name=f"tzsb demo ({algorithm.value})",
            )
        )  # fmt: skip
        apps.append(DemoApp(appid, algorithm, secret, busicodes))
    return apps


def _send(url: str, app: DemoApp, busicode: str, action: str, tail: str) -> str:
    return (
        f"tzsb send --url {url} --appid {app.appid} --secret {app.secret} --sign {app.sign.value} "
        f"--busicode {busicode} --action {action} {tail}"
    )


def _commands(home: Path, url: str, apps: list[DemoApp]) -> list[str]:
    """A query per app (each on another business type), then an add of the sample devices."""
    commands = []
    query = shlex.quote(orjson.dumps({"_region": samples.AREA}).decode())
    for index, app in enumerate(apps):
        types = [busicode[2:] for busicode in app.busicodes]
        preferred = [code for code in QUERY_TYPES if code in types] or types
        code = preferred[index % len(preferred)]
        commands.append(_send(url, app, f"14{code}", Action.QUERY.value, f"--query {query}"))
    last = apps[-1]
    code = "0101" if "140101" in last.busicodes else last.busicodes[0][2:]
    examples = shlex.quote(str(home / "examples" / f"{code}.json"))
    commands.append(_send(url, last, f"14{code}", Action.ADD.value, f"--file {examples}"))
    return commands


def _curl(url: str, app: DemoApp) -> str:
    """The request of the first command of ``app`` (an MD5 app) as a shell script around curl."""
    busicode = f"14{'0101' if '140101' in app.busicodes else app.busicodes[0][2:]}"
    busilist = orjson.dumps([{"_region": samples.AREA}]).decode()
    return "\n".join([
        f"secret={app.secret}",
        "random=$(python3 -c 'import uuid; print(uuid.uuid4())')",
        f"busilist='{busilist}'",
        f'sign=$(printf \'%s\' "action=04&appid={app.appid}&busicode={busicode}&busilist=${{busilist}}'
        '&random=${random}&key=${secret}" | md5sum | cut -c1-32 | tr a-f A-F)',
        f"curl -s {url} -H 'content-type: application/json; charset=utf-8' -d @- <<JSON",
        f'{{"appid":"{app.appid}","busicode":"{busicode}","action":"04","busilist":'
        "$(printf '%s' \"$busilist\" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),"
        '"random":"${random}","sign":"${sign}"}',
        "JSON",
    ])  # fmt: skip


def _print_text(
    home: Path,
    level: str,
    region: str,
    loaded: dict[str, int],
    apps: list[DemoApp],
    serve: str,
    commands: list[str],
    curl: str,
) -> None:
    # Plain text, not rich markup: the commands hold [ ] and must come out exactly as they run.
    echo = typer.echo
    echo(
        f"Sandbox node created in {home} ({level} {region}): {sum(loaded.values())} sample records of "
        f"{len(loaded)} business types, all in {samples.AREA} ({samples.AREA_NAME}); the same records are in "
        f"{home / 'examples'}."
    )
    echo("")
    echo(
        f"Demo apps of the county {samples.AREA}, actions 01-04 on {' '.join(apps[0].busicodes)}. "
        "Their secrets are shown only now:"
    )
    width = max(len(app.appid) for app in apps)
    for app in apps:
        echo(f"  {app.appid:<{width}}  {app.sign.value:<8}  {app.secret}")
    echo("")
    echo("Serve it:")
    echo(f"  {serve}")
    echo("")
    echo("Then, from another shell (sensitive fields come masked):")
    for command in commands:
        echo(f"  {command}")
    echo("")
    # Not indented: the here-document's closing JSON line must start its line.
    echo(f"Or the first query with curl ({apps[0].appid}, MD5):")
    echo(curl)
