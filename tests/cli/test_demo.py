"""`tzsb demo`: a sandbox node with the sample records stored as adds store them, an app per sign
algorithm, and printed commands that work against the node once it is served."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tests.support import log_rows
from tests.web.servers import free_port, wait_until_serving
from tzsb.app import Node, build_node
from tzsb.catalog import samples
from tzsb.cli.demo import LOADER
from tzsb.cli.main import app as cli
from tzsb.client import build_request
from tzsb.protocol import RESULT_SUCCESS, SignAlgorithm
from tzsb.registry import AppSpec, MasterKey
from tzsb.settings import load_settings, write_config
from tzsb.store.schema import records

runner = CliRunner()
SAMPLES: Final = samples.sample_records()
#: The directory of the interpreter running the tests: `tzsb`, `python3` of this install.
BIN: Final = Path(sys.executable).parent
ALGORITHMS: Final = {"MD5", "SM4", "SM3", "HMAC-SM3"}


def shell_env() -> dict[str, str]:
    """The environment a user's shell has after `source .venv/bin/activate`."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(BIN.parent)}


def run_shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash in ``cwd``, as a user would paste it."""
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=shell_env(), capture_output=True, text=True, timeout=60, check=False
    )


@contextmanager
def served(command: str, cwd: Path, port: int, log: Path) -> Iterator[str]:
    """Run a `tzsb serve` command line with bash until the block ends; yields the base URL once
    /healthz answers on ``port``."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", command], cwd=cwd, env=shell_env(), stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, log, repr(command))
        yield base
    finally:
        # bash may have started tzsb as its child: end the whole session it leads.
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def answer_of(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON answer a `tzsb send` or curl printed; fails with its output when the run failed."""
    assert completed.returncode == 0, completed.stdout + completed.stderr
    answer: dict[str, Any] = orjson.loads(completed.stdout)
    return answer


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def make_demo(home: Path, *args: str) -> dict[str, Any]:
    code, out, err = invoke("demo", "--home", str(home), "--json", *args)
    assert code == 0, err
    made: dict[str, Any] = orjson.loads(out)
    return made


def stored(node: Node) -> list[tuple[Any, ...]]:
    columns = (records.c.business, records.c.record_key, records.c.region, records.c.updated_at, records.c.data,
               records.c.deleted, records.c.seq)  # fmt: skip
    with node.store.read() as connection:
        return [tuple(row) for row in connection.execute(sa.select(*columns).order_by(records.c.seq))]


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content: to prove that nothing changed."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[str, Any]]:
    """One demo node (province 330000) for the tests that only read it or serve it: its home, the
    port its commands name, and what `tzsb demo --json` printed."""
    home = tmp_path_factory.mktemp("sandbox") / "demo"
    port = free_port()
    return home, port, make_demo(home, "--port", str(port))


def test_sample_records_are_stored_as_a_normal_add_stores_them(
    sandbox: tuple[Path, int, dict[str, Any]], tmp_path: Path
) -> None:
    home, _, made = sandbox
    assert made["records"] == {code: len(batch) for code, batch in SAMPLES.items()}
    assert list(made["records"]) == list(samples.LOAD_ORDER)
    node = build_node(load_settings(home, environ={}))
    try:
        demo_rows = stored(node)
        log = log_rows(node)
        with node.store.read() as connection:
            sources = set(connection.execute(sa.select(records.c.source_appid, records.c.changed_by)).all())
    finally:
        node.close()
    # The same records added by an ordinary app of another node, one request per business type.
    settings = load_settings(tmp_path / "plain", environ={}, level="province", region="330000")
    settings.home.mkdir()
    write_config(settings)
    MasterKey.generate().write(settings.master_key_path)
    plain = build_node(settings)
    try:
        _, secret = plain.registry.create(
            AppSpec(appid="zj-own", region="330000", busicodes=frozenset(f"11{code}" for code in SAMPLES),
                    actions=frozenset({"01"}))
        )  # fmt: skip
        for code, batch in SAMPLES.items():
            request = build_request("zj-own", secret, SignAlgorithm.MD5, f"11{code}", "01", batch)
            answer = orjson.loads(plain.exchange.handle(orjson.dumps(request), "application/json", "127.0.0.1"))
            assert answer["datalist"]["result"] == RESULT_SUCCESS, answer
            assert "warnings" not in answer["datalist"], answer
        assert stored(plain) == demo_rows
    finally:
        plain.close()
    assert len(demo_rows) == sum(len(batch) for batch in SAMPLES.values())
    assert sources == {(LOADER, LOADER)}
    assert [(row["appid"], row["busicode"], row["action"], row["result"]) for row in log] == [
        (LOADER, f"11{code}", "01", RESULT_SUCCESS) for code in samples.LOAD_ORDER
    ]


def test_an_app_per_sign_algorithm_whose_secrets_are_shown_once(sandbox: tuple[Path, int, dict[str, Any]]) -> None:
    home, port, made = sandbox
    apps = made["apps"]
    assert {app["sign"] for app in apps} == ALGORITHMS and len(apps) == 4
    for app in apps:
        assert app["region"] == "330106" and app["level"] == "county"
        assert app["actions"] == ["01", "02", "03", "04"]
        assert all(busicode.startswith("14") for busicode in app["busicodes"])
        assert {"140101", "140102", "140103", "140401"} <= set(app["busicodes"])
        assert len(app["secret"]) == 32
    code, out, _ = invoke("app", "list", "--json", "--home", str(home))
    assert code == 0
    listed = {item["appid"]: item for item in orjson.loads(out)}
    assert listed[LOADER]["enabled"] is False
    assert all(listed[app["appid"]]["enabled"] and listed[app["appid"]]["sign"] == app["sign"] for app in apps)
    for app in apps:
        assert app["secret"] not in out
        assert app["secret"].encode() not in (home / "tzsb.db").read_bytes()
    assert made["url"] == f"http://127.0.0.1:{port}/tzsb/exchange"
    assert made["serve"] == f"tzsb serve --home {home} --port {port}"
    assert listing(home / "examples") == samples.sample_files()


def test_printed_commands_and_curl_work_against_the_served_node(
    sandbox: tuple[Path, int, dict[str, Any]], tmp_path: Path
) -> None:
    _, port, made = sandbox
    commands: list[str] = made["commands"]
    assert len(commands) == 5
    assert {shlex.split(command)[shlex.split(command).index("--sign") + 1] for command in commands} == ALGORITHMS
    with served(made["serve"], tmp_path, port, tmp_path / "serve.log"):
        for command in commands:
            datalist = answer_of(run_shell(command, tmp_path))["datalist"]
            assert datalist["result"] == RESULT_SUCCESS, (command, datalist)
            argv = shlex.split(command)
            business = argv[argv.index("--busicode") + 1][2:]
            if "--query" in argv:
                assert len(datalist["busilist"]) == len(SAMPLES[business]), command
            else:
                # Sending the sample devices again changes nothing: the node holds exactly them.
                assert datalist["counts"]["unchanged"] == len(SAMPLES[business]), command
        curl = answer_of(run_shell(made["curl"], tmp_path))
        assert curl["appid"] == "demo-md5"
        assert curl["datalist"]["result"] == RESULT_SUCCESS, curl
        assert sorted(item["EQP_CODE"] for item in curl["datalist"]["busilist"]) == sorted(
            record["EQP_CODE"] for record in SAMPLES["0101"]
        )


def test_text_output_shows_each_secret_with_commands_to_paste(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    code, out, err = invoke("demo", "--home", str(home))
    assert code == 0, err
    table = {
        parts[0]: (parts[1], parts[2])
        for line in out.splitlines()
        if (parts := line.split()) and len(parts) == 3 and parts[0].startswith("demo-")
    }
    assert {sign for sign, _ in table.values()} == ALGORITHMS
    sends = [shlex.split(line) for line in out.splitlines() if line.startswith("  tzsb send ")]
    assert len(sends) == 5
    for argv in sends:
        appid = argv[argv.index("--appid") + 1]
        assert (argv[argv.index("--sign") + 1], argv[argv.index("--secret") + 1]) == table[appid]
        assert argv[argv.index("--url") + 1] == "http://127.0.0.1:8080/tzsb/exchange"
    assert f"  tzsb serve --home {home} --port 8080" in out.splitlines()
    assert "\nJSON\n" in out and f"secret={table['demo-md5'][1]}\n" in out


def test_a_city_node_serves_the_county_apps(tmp_path: Path) -> None:
    home = tmp_path / "city"
    made = make_demo(home, "--level", "city", "--region", "330100")
    assert made["level"] == "city" and made["region"] == "330100"
    assert sum(made["records"].values()) == sum(len(batch) for batch in SAMPLES.values())
    node = build_node(load_settings(home, environ={}))
    try:
        for app in made["apps"]:
            request = build_request(app["appid"], app["secret"], SignAlgorithm(app["sign"]), "140401", "04",
                                    [{"_region": "330106"}])  # fmt: skip
            answer = orjson.loads(node.exchange.handle(orjson.dumps(request), "application/json", "127.0.0.1"))
            assert answer["datalist"]["result"] == RESULT_SUCCESS, answer
            assert len(answer["datalist"]["busilist"]) == len(SAMPLES["0401"])
    finally:
        node.close()


def test_a_home_that_holds_a_node_is_refused_and_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert invoke("init", "--home", str(home), "--region", "330000")[0] == 0
    before = listing(tmp_path)
    code, out, err = invoke("demo", "--home", str(home))
    assert code == 1 and out == ""
    assert "already holds a node" in err and "nothing was changed" in err
    assert listing(tmp_path) == before


def test_a_folder_that_is_not_empty_is_refused_and_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "notes"
    home.mkdir()
    (home / "todo.txt").write_text("keep me\n", encoding="utf-8")
    before = listing(tmp_path)
    code, _, err = invoke("demo", "--home", str(home))
    assert code == 1
    assert "is not an empty folder" in err and "choose another --home" in err
    assert listing(tmp_path) == before and sorted(path.name for path in tmp_path.iterdir()) == ["notes"]


def test_an_empty_folder_becomes_the_node(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    home.mkdir()
    made = make_demo(home)
    assert made["home"] == str(home)
    assert (home / "tzsb.toml").exists() and (home / "master.key").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--level", "county"], "--level must be province or city"),
        (["--level", "national", "--region", "100000"], "--level must be province or city"),
        (["--region", "320000"], "--region must be a 6-digit GB/T 2260 code containing 330106"),
        (["--region", "3300"], "--region must be a 6-digit GB/T 2260 code containing 330106"),
        (["--port", "0"], "--port must be between 1 and 65535"),
    ],
)
def test_bad_options_are_refused_before_anything_is_made(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = invoke("demo", "--home", str(tmp_path / "demo"), *args)
    assert code == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_a_refused_sample_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = {code: [dict(record) for record in batch] for code, batch in SAMPLES.items()}
    del broken["0101"][0]["UPDATE_TIME"]
    monkeypatch.setattr(samples, "sample_records", lambda: broken)
    code, out, err = invoke("demo", "--home", str(tmp_path / "demo"))
    assert code == 1 and out == ""
    assert "refused the sample records of 0101 (E_VALIDATION" in err and "nothing was created" in err
    assert list(tmp_path.iterdir()) == []
