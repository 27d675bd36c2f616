"""The `tzsb` command as an operator uses it (in process, through typer's runner)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tzsb.cli.main import app

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    code, _, err = invoke("init", "--home", str(home), "--level", "city", "--region", "330100")
    assert code == 0, err
    return home


def create(home: Path, appid: str = "xihu", *extra: str) -> dict[str, object]:
    code, out, err = invoke(
        "app", "create", "--home", str(home), "--appid", appid, "--region", "330106",
        "--busicode", "140101", "--action", "01", "--action", "04", "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    created: dict[str, object] = json.loads(out)
    return created


def test_init_creates_settings_and_a_private_master_key(home: Path) -> None:
    assert (home / "tzsb.toml").read_text().count('region = "330100"') == 1
    assert stat.S_IMODE((home / "master.key").stat().st_mode) == 0o600
    assert (home / "tzsb.db").exists()


def test_init_refuses_to_overwrite_a_node(home: Path) -> None:
    key_before = (home / "master.key").read_text()
    code, _, err = invoke("init", "--home", str(home), "--region", "330000")
    assert code == 1
    assert "already holds a node" in err
    assert (home / "master.key").read_text() == key_before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--level", "village"], "--level must be one of"),
        (["--region", "33010"], "--region must be a 6-digit GB/T 2260 code"),
    ],
)
def test_init_rejects_bad_identity(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = invoke("init", "--home", str(tmp_path / "n"), *args)
    assert code == 1
    assert message in err
    assert not (tmp_path / "n" / "tzsb.toml").exists()


def test_home_from_environment(home: Path) -> None:
    create(home)
    code, out, _ = invoke("app", "list", "--json", env={"TZSB_HOME": str(home)})
    assert code == 0
    assert [item["appid"] for item in json.loads(out)] == ["xihu"]


def test_secret_is_shown_once_and_never_again(home: Path) -> None:
    created = create(home)
    secret = str(created["secret"])
    assert len(secret) == 32
    for args in (["app", "list", "--json"], ["app", "show", "xihu"], ["app", "list"]):
        code, out, _ = invoke(*args, "--home", str(home))
        assert code == 0
        assert secret not in out
    assert secret.encode() not in (home / "tzsb.db").read_bytes()


def test_app_show_disable_enable_rotate(home: Path) -> None:
    create(home)
    code, out, _ = invoke("app", "show", "xihu", "--home", str(home))
    shown = json.loads(out)
    assert shown["busicodes"] == ["140101"]
    assert shown["actions"] == ["01", "04"]
    assert shown["enabled"] is True
    assert invoke("app", "disable", "xihu", "--home", str(home))[0] == 0
    assert json.loads(invoke("app", "show", "xihu", "--home", str(home))[1])["enabled"] is False
    assert invoke("app", "enable", "xihu", "--home", str(home))[0] == 0
    code, out, _ = invoke("app", "rotate-secret", "xihu", "--grace-hours", "2", "--json", "--home", str(home))
    assert code == 0
    assert len(json.loads(out)["secret"]) == 32
    assert json.loads(invoke("app", "show", "xihu", "--home", str(home))[1])["secrets_in_force"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--appid", "bad id"], "appid 'bad id' must be 1-64 characters"),
        (["--appid", "a", "--busicode", "150101"], "busicode '150101' is not purpose"),
        (["--appid", "a", "--action", "05"], "action '05' must be one of 01 02 03 04"),
    ],
)
def test_app_create_rejects_bad_grants(home: Path, args: list[str], message: str) -> None:
    base = ["app", "create", "--home", str(home), "--region", "330106", "--busicode", "140101", "--action", "01"]
    code, _, err = invoke(*base, *args)
    assert code == 1
    assert message in err
    assert json.loads(invoke("app", "list", "--json", "--home", str(home))[1]) == []


def test_app_create_twice_is_refused(home: Path) -> None:
    create(home)
    code, _, err = invoke(
        "app", "create", "--home", str(home), "--appid", "xihu", "--region", "330106",
        "--busicode", "140101", "--action", "01",
    )  # fmt: skip
    assert code == 1
    assert "already exists" in err


def test_commands_on_a_missing_home_say_what_to_do(tmp_path: Path) -> None:
    code, _, err = invoke("app", "list", "--home", str(tmp_path / "nowhere"))
    assert code == 1
    assert "tzsb init" in err


def test_catalog_list_and_show() -> None:
    code, out, _ = invoke("catalog", "list")
    assert code == 0
    assert "0101" in out and "特种设备基础数据" in out
    code, out, _ = invoke("catalog", "show", "0101", "--json")
    shown = json.loads(out)
    assert shown["primary_key"] == "EQP_CODE"
    assert {field["code"] for field in shown["fields"]} >= {"EQP_CODE", "AREA_CODE", "UPDATE_TIME"}
    code, _, err = invoke("catalog", "show", "0199")
    assert code == 1
    assert "business type 0199 is not in the catalog" in err


def test_catalog_show_prints_each_code_lists_source_and_legacy_codes() -> None:
    code, out, _ = invoke("catalog", "show", "0301", "--json")
    assert code == 0
    (hazard,) = [field for field in json.loads(out)["fields"] if field["code"] == "HAZARD_LEVEL"]
    assert hazard["codes_source"].startswith("《安全生产事故隐患排查治理暂行规定》（安监总局令第16号）第三条")
    assert sorted(hazard["legacy_codes"]) == ["1", "2"]


def test_send_needs_exactly_one_input() -> None:
    args = ["send", "--url", "http://127.0.0.1:9/x/y", "--appid", "a", "--secret", "s", "--busicode", "140101"]
    code, _, err = invoke(*args, "--action", "04")
    assert code == 1
    assert "exactly one of --file" in err


def test_prune_nonces(home: Path) -> None:
    code, out, _ = invoke("prune-nonces", "--home", str(home), "--days", "7")
    assert code == 0
    assert "forgot 0 request id(s) older than 7 day(s)" in out
    code, _, err = invoke("prune-nonces", "--home", str(home), "--days", "0")
    assert code == 1
    assert "--days must be at least 1" in err


@pytest.mark.parametrize("network", ["10.0.0.5/24", "proxy.example", "10.0.0.0/33"])
def test_serve_refuses_a_trusted_proxy_that_is_no_network(home: Path, network: str) -> None:
    code, _, err = invoke("serve", "--home", str(home), "--trusted-proxy", "127.0.0.0/8", "--trusted-proxy", network)
    assert code == 1
    assert f"--trusted-proxy {network!r} is not a network" in err


def test_serve_lists_the_trusted_proxy_option() -> None:
    code, out, _ = invoke("serve", "--help")
    assert code == 0
    assert "--trusted-proxy" in out and "X-Forwarded-For" in out


@pytest.fixture
def province(tmp_path: Path) -> Path:
    home = tmp_path / "province"
    code, _, err = invoke("init", "--home", str(home), "--level", "province", "--region", "330000")
    assert code == 0, err
    return home


def _collided(home: Path) -> None:
    """Ningbo's app (330200) squats a Hangzhou key first; Hangzhou's add then collides with it."""
    from tests.support import body, call, device, grant
    from tzsb.app import build_node
    from tzsb.settings import load_settings

    node = build_node(load_settings(home, environ={}))
    try:
        ningbo = grant(node, appid="nb-city", region="330200")
        assert (
            call(node, body("nb-city", ningbo, "140101", "01", [device(1, AREA_CODE="330203")]))["datalist"]["result"]
            == "0001"
        )
        hangzhou = grant(node, appid="hz-city", region="330100")
        answer = call(node, body("hz-city", hangzhou, "140101", "01", [device(1)]))
        assert answer["datalist"]["code"] == "E_CONFLICT"
        call(node, b"junk", "application/json", client_addr="198.51.100.7")
    finally:
        node.close()


def test_the_operator_sees_collisions_and_reassigns_the_record(province: Path) -> None:
    home = province
    _collided(home)
    code, out, err = invoke("app", "collisions", "--home", str(home), "--json")
    assert code == 0, err
    [collision] = json.loads(out)
    assert (collision["appid"], collision["business"], collision["held_region"], collision["held_source"]) == (
        "hz-city", "0101", "330203", "nb-city"
    )  # fmt: skip
    key = collision["key"]

    code, out, err = invoke(
        "record", "reassign", "--home", str(home), "0101", key, "--region", "330106", "--source", "hz-city", "--json"
    )
    assert code == 0, err
    done = json.loads(out)
    assert (done["region_before"], done["source_before"], done["region"], done["source"]) == (
        "330203", "nb-city", "330106", "hz-city"
    )  # fmt: skip
    code, out, _ = invoke("log", "--home", str(home), "--json", "--limit", "1")
    assert "reassigned 0101 record" in json.loads(out)[0]["message"]


def test_reassigning_an_unknown_record_fails_clearly(home: Path) -> None:
    code, _, err = invoke("record", "reassign", "--home", str(home), "0101", "NOPE", "--region", "330106")
    assert code == 1
    assert "holds no 0101 record with key NOPE" in err


def test_the_log_shows_unidentified_refusals_per_address_and_minute(province: Path) -> None:
    home = province
    _collided(home)
    code, out, err = invoke("log", "--home", str(home), "--unidentified", "--json")
    assert code == 0, err
    assert [(row["client_addr"], row["count"], row["last_code"]) for row in json.loads(out)] == [
        ("198.51.100.7", 1, "E_JSON")
    ]


def test_a_url_password_is_masked_as_written_and_as_the_driver_reads_it() -> None:
    from tzsb.cli.common import redact

    url = "postgresql://tzsb:p%40ss%2Fw0rd@db.example/tzsb"
    message = f"login as tzsb with p@ss/w0rd refused; url {url}"
    assert redact(message, url) == "login as tzsb with ********** refused; url **********"
    assert redact("nothing secret here", "", "sqlite:///tmp/tzsb.db") == "nothing secret here"


def test_serving_a_node_whose_database_is_down_says_what_to_check(tmp_path: Path) -> None:
    """Before: a 500-line traceback whose frames could show the URL; now one line, password masked."""
    from tests.web.servers import tzsb

    home = tmp_path / "node"
    code, _, err = invoke("init", "--home", str(home), "--region", "330000")
    assert code == 0, err
    password = "p@ss-hunter2"
    url = "postgresql://tzsb:p%40ss-hunter2@127.0.0.1:1/tzsb"
    served = tzsb("serve", "--home", str(home), env={**os.environ, "TZSB_DATABASE_URL": url})
    assert served.returncode == 1
    assert "cannot open the node's database (OperationalError): " in served.stderr
    assert "check database_url (tzsb.toml or TZSB_DATABASE_URL) and that the database is reachable" in served.stderr
    assert "Traceback" not in served.stderr and "╭" not in served.stderr
    output = served.stdout + served.stderr
    assert password not in output and "p%40ss-hunter2" not in output


def test_init_on_a_path_that_cannot_be_a_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    code, _, err = invoke("init", "--home", str(tmp_path / "taken"), "--region", "330000")
    assert code == 1
    assert f"cannot create the node home {tmp_path / 'taken'}: " in err
    assert "choose another --home" in err


def test_services_are_added_shown_without_their_secret_and_removed(home: Path) -> None:
    url = "http://127.0.0.1:9/tzsb/exchange"
    code, out, err = invoke(
        "service", "add", "--home", str(home), "province-devices", "--business", "0101", "--action", "04",
        "--url", url, "--appid", "city-330100", "--upstream-purpose", "14", "--timeout", "5", "--json",
        env={"TZSB_SERVICE_SECRET": "very-secret-value"},
    )  # fmt: skip
    assert code == 0, err
    added = json.loads(out)
    assert (added["name"], added["businesses"], added["actions"], added["url"]) == (
        "province-devices", ["0101"], ["04"], url,
    )  # fmt: skip
    assert (added["upstream_purpose"], added["timeout_seconds"], added["breaker_state"]) == ("14", 5.0, "closed")
    code, out, _ = invoke("service", "show", "--home", str(home), "province-devices")
    assert code == 0 and "breaker_state: closed" in out and "very-secret-value" not in out
    code, out, _ = invoke("service", "list", "--home", str(home), "--json")
    assert [item["name"] for item in json.loads(out)] == ["province-devices"]
    assert "very-secret-value" not in (home / "tzsb.db").read_bytes().decode("latin-1")  # sealed at rest
    assert invoke("service", "disable", "--home", str(home), "province-devices")[0] == 0
    code, out, _ = invoke("service", "show", "--home", str(home), "province-devices", "--json")
    assert json.loads(out)["enabled"] is False
    assert invoke("service", "enable", "--home", str(home), "province-devices")[0] == 0
    assert invoke("service", "remove", "--home", str(home), "province-devices")[0] == 0
    code, _, err = invoke("service", "show", "--home", str(home), "province-devices")
    assert code == 1 and "no service named province-devices" in err
    code, _, err = invoke(
        "service", "add", "--home", str(home), "p", "--business", "0101", "--url", "ftp://x", "--appid", "a",
        env={"TZSB_SERVICE_SECRET": "s"},
    )  # fmt: skip
    assert code == 1 and "--url 'ftp://x'" in err
