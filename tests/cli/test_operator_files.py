"""What an operator meets around a node: private files, the node's own log lines, --version."""

from __future__ import annotations

import json
import stat
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.web.servers import init_province, serving, tzsb
from tzsb.client import ExchangeClient


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_the_home_and_its_files_private(tmp_path: Path) -> None:
    """tzsb.db holds names, ID numbers and phone numbers: it was 0644 in a 0755 folder."""
    home = tmp_path / "node"
    init_province(home)
    assert _mode(home) == 0o700
    for name in ("tzsb.toml", "master.key", "tzsb.db"):
        assert _mode(home / name) == 0o600, name
    created = tzsb("app", "create", "--home", str(home), "--appid", "a1", "--region", "330100",
                   "--busicode", "140101", "--action", "04")  # fmt: skip
    assert created.returncode == 0, created.stderr
    wal = home / "tzsb.db-wal"
    if wal.exists():  # SQLite gives its side files the database file's mode
        assert _mode(wal) == 0o600


def test_init_tightens_an_existing_empty_folder(tmp_path: Path) -> None:
    home = tmp_path / "node"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    init_province(home)
    assert _mode(home) == 0o700


def test_the_demo_home_is_private(tmp_path: Path) -> None:
    demo = tzsb("demo", "--home", str(tmp_path / "demo"), "--json")
    assert demo.returncode == 0, demo.stderr
    assert _mode(tmp_path / "demo") == 0o700
    assert _mode(tmp_path / "demo" / "tzsb.db") == 0o600


def test_the_database_password_never_reaches_the_terminal(tmp_path: Path) -> None:
    password = "s3cret-Pa55word"
    url = f"postgresql://tzsb:{password}@127.0.0.1:1/nowhere"
    init = tzsb("init", "--home", str(tmp_path / "node"), "--region", "330000", "--database-url", url)
    assert init.returncode == 1
    assert "cannot open the database" in init.stderr
    assert password not in init.stderr + init.stdout


def test_version_comes_from_the_installed_package() -> None:
    shown = tzsb("--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"tzsb-exchange {version('tzsb-exchange')}"


def _reader(home: Path) -> str:
    created = tzsb("app", "create", "--home", str(home), "--appid", "reader", "--region", "330100",
                   "--busicode", "140101", "--action", "04", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["secret"])


def _wait_for(log: Path, found: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8")
        if found(text):
            return text
        time.sleep(0.1)
    pytest.fail(f"not logged: {log.read_text(encoding='utf-8')}")


@pytest.mark.parametrize("form", ["text", "json"])
def test_the_nodes_own_log_lines_reach_stderr(tmp_path: Path, form: str) -> None:
    """Before, uvicorn's log_level configured only uvicorn's loggers: a rejected rules file said nothing."""
    home = tmp_path / "node"
    init_province(home)
    secret = _reader(home)
    log = tmp_path / "serve.log"
    env = {"TZSB_RULES_CHECK_SECONDS": "0"}
    with serving(home, log, env=env, args=("--log-format", form)) as base:
        (home / "rules.json").write_text("{ not json", encoding="utf-8")
        with ExchangeClient(f"{base}/tzsb/exchange", "reader", secret) as client:
            client.send("140101", "04", [{"_region": "330100"}])
        text = _wait_for(log, lambda text: "rules file rejected" in text)
    lines = [line for line in text.splitlines() if "rules file rejected" in line]
    if form == "json":
        entry = json.loads(lines[0])
        assert entry["level"] == "ERROR"
        assert entry["logger"] == "tzsb.rules.ruleset"
        assert entry["message"].startswith("rules file rejected, previous rules stay in force: ")
        assert entry["time"].endswith("Z") and entry["time"][10] == "T"
        # uvicorn's own lines go through the same formatter.
        assert any(json.loads(line)["logger"].startswith("uvicorn") for line in text.splitlines() if line[:1] == "{")
    else:
        moment, level, logger, *_ = lines[0].split(" ")
        assert moment.endswith("Z") and moment[10] == "T"
        assert (level, logger) == ("ERROR", "tzsb.rules.ruleset:")


def test_a_home_others_can_read_is_reported_with_the_fix(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_province(home)
    home.chmod(0o755)
    (home / "tzsb.db").chmod(0o644)
    log = tmp_path / "serve.log"
    with serving(home, log):
        pass
    text = log.read_text(encoding="utf-8")
    assert f"{home} is readable by other local accounts (mode 755); it holds secrets or personal data: " in text
    assert f"chmod 700 {home}" in text
    assert f"chmod 600 {home / 'tzsb.db'}" in text
    assert _mode(home) == 0o755  # reported, not changed behind the operator's back


def test_every_imported_package_is_declared() -> None:
    """anyio was imported by the node but not declared in pyproject."""
    import ast
    import tomllib
    from importlib.metadata import packages_distributions

    root = Path(__file__).resolve().parents[2]
    declared = {
        requirement.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip().lower()
        for requirement in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    distributions = packages_distributions()
    imported: set[str] = set()
    for path in (root / "src" / "tzsb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"tzsb", "__future__"}
    undeclared = {
        name: distributions.get(name, [name])
        for name in third_party
        if not {d.lower().replace("_", "-") for d in distributions.get(name, [name])} & declared
    }
    assert undeclared == {}
