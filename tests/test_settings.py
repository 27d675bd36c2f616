"""Settings: typed from their own annotations, written by a TOML writer 0600, the database URL a secret."""

from __future__ import annotations

import os
import stat
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from tzsb.errors import ConfigurationError
from tzsb.settings import Secret, Settings, load_settings, write_config

# Passwords that string formatting wrote into an unreadable (or silently changed) tzsb.toml.
HOSTILE_PASSWORDS = ['pa"ss', "pa\\ss", "caf\\u00e9", "line\nbreak", "'''", 'a"""b', "tab\tand#hash", "密码✓"]


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_a_database_url_round_trips_whatever_its_password_holds(tmp_path: Path, password: str) -> None:
    url = f"postgresql://tzsb:{password}@db.example:5432/tzsb"
    write_config(load_settings(tmp_path, environ={}, level="city", region="330100", database_url=url))
    again = load_settings(tmp_path, environ={})
    assert str(again.database_url) == url
    assert (again.level, again.region) == ("city", "330100")


def test_the_settings_file_is_private_from_its_first_byte(tmp_path: Path) -> None:
    path = write_config(load_settings(tmp_path, environ={}, database_url="postgresql://u:secret@h/db"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == ["tzsb.toml"]  # no temporary file left behind


def test_a_temporary_file_left_by_a_crashed_run_is_not_in_the_way(tmp_path: Path) -> None:
    stale = tmp_path / f".tzsb.toml.{os.getpid()}.tmp"
    stale.write_text("half a file", encoding="utf-8")
    path = write_config(load_settings(tmp_path, environ={}, region="330000"))
    assert load_settings(tmp_path, environ={}).region == "330000"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stale.read_text(encoding="utf-8") == "half a file"  # not ours to remove


def test_the_master_key_from_the_environment_is_a_secret_too(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={"TZSB_MASTER_KEY": "0123456789abcdef" * 2})
    assert isinstance(settings.master_key, Secret)
    assert "0123456789abcdef" not in repr(settings)


def test_the_database_url_never_shows_in_a_repr(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={"TZSB_DATABASE_URL": "postgresql://u:hunter2-secret@h/db"})
    assert isinstance(settings.database_url, Secret)
    assert "hunter2-secret" not in repr(settings)
    assert settings.database == "postgresql://u:hunter2-secret@h/db"


def _number_settings() -> list[tuple[str, type]]:
    hints = typing.get_type_hints(Settings)
    return [(item.name, hints[item.name]) for item in fields(Settings) if hints[item.name] in (int, float)]


@pytest.mark.parametrize(("name", "kind"), _number_settings())
def test_every_number_setting_from_the_environment_is_a_number(tmp_path: Path, name: str, kind: type) -> None:
    """Typed from the annotations: a new integer setting cannot silently stay a string (before, e.g.
    answer_ttl_seconds, answer_quota_bytes and collision_lockout_keys did)."""
    value = getattr(Settings(), name)
    settings = load_settings(tmp_path, environ={f"TZSB_{name.upper()}": str(value)})
    assert type(getattr(settings, name)) is kind
    assert getattr(settings, name) == value


def test_a_number_setting_from_toml_is_typed_too(tmp_path: Path) -> None:
    (tmp_path / "tzsb.toml").write_text("answer_ttl_seconds = 60\nrules_check_seconds = 2\n", encoding="utf-8")
    settings = load_settings(tmp_path, environ={})
    assert (settings.answer_ttl_seconds, type(settings.answer_ttl_seconds)) == (60, int)
    assert (settings.rules_check_seconds, type(settings.rules_check_seconds)) == (2.0, float)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TZSB_ANSWER_TTL_SECONDS": "a day"}, "setting answer_ttl_seconds must be an integer, got 'a day'"),
        ({"TZSB_COLLISION_LOCKOUT_KEYS": "1.5"}, "setting collision_lockout_keys must be an integer, got '1.5'"),
        ({"TZSB_RULES_CHECK_SECONDS": "soon"}, "setting rules_check_seconds must be a number, got 'soon'"),
        ({"TZSB_LOG_LEVEL": "loud"}, "log_level 'loud' must be one of debug, info, warning, error"),
        ({"TZSB_LOG_FORMAT": "xml"}, "log_format 'xml' must be one of text, json"),
        ({"TZSB_HEADER_TIMEOUT_SECONDS": "0"}, "header_timeout_seconds and body_timeout_seconds must be more than 0"),
        ({"TZSB_LIMIT_CONCURRENCY": "-1"}, "limit_concurrency must be 0 (no cap) or more, got -1"),
    ],
)
def test_a_bad_value_names_the_setting_and_what_it_must_be(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(tmp_path, environ=environ)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("port = true\n", "setting port must be an integer, got True"),
        ("port = 80.5\n", "setting port must be an integer, got 80.5"),
        ("region = 330000\n", "setting region must be a string, got 330000"),
        ('database_url = ["x"]\n', "setting database_url must be a string, got **********"),
    ],
)
def test_a_wrongly_typed_toml_value_is_refused(tmp_path: Path, document: str, message: str) -> None:
    (tmp_path / "tzsb.toml").write_text(document, encoding="utf-8")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(tmp_path, environ={})
    assert str(refused.value) == message
