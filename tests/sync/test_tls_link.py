"""A link to a parent that serves HTTPS, demands a client certificate bound to the app (7.1.1, 7.2)
and a signed timestamp: trusted through the link's CA bundle, authenticated by its certificate."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import body, call, device, grant
from tests.sync.nodes import held, make_home, open_home
from tests.web.servers import free_port, tzsb
from tests.web.test_tls import Credentials, client_context, issue
from tzsb.app import Node
from tzsb.errors import ConfigurationError
from tzsb.sync import LinkSpec


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[tuple[str, str, Credentials, Path]]:
    """A province node over mutual TLS; its app for the city is bound to the "bound" certificate and
    demands a signed timestamp."""
    credentials = issue(tmp_path)
    home = tmp_path / "province"
    assert tzsb("init", "--home", str(home), "--level", "province", "--region", "330000").returncode == 0
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", "city-330100", "--region", "330100",
        "--busicode", "140101", "--action", "01", "--action", "03", "--require-timestamp", "--json",
        "--cert-fingerprint", credentials.clients["bound"][2],
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    port = free_port()
    log = tmp_path / "province.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tzsb", "serve", "--home", str(home), "--port", str(port),
             "--tls-cert", str(credentials.server_cert), "--tls-key", str(credentials.server_key),
             "--client-ca", str(credentials.ca)],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                context = client_context(credentials, "bound")
                httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"TLS parent did not start: {log.read_text()}")
                time.sleep(0.1)
        yield f"https://127.0.0.1:{port}/tzsb/exchange", json.loads(created.stdout)["secret"], credentials, home
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[Node]:
    node = open_home(make_home(tmp_path, "city", "city", "330100", ""), sync_backoff_seconds=0.0)
    secret = grant(node, appid="city-local", region="330100", busicodes=frozenset({"110101"}))
    answer = call(node, body("city-local", secret, "110101", "01", [device(number) for number in range(6)]))
    assert answer["datalist"]["result"] == "0001"
    yield node
    node.close()


def _spec(url: str, secret: str, credentials: Credentials, client: str | None, **changes: object) -> LinkSpec:
    cert, key = (
        (None, None) if client is None else (str(credentials.clients[client][0]), str(credentials.clients[client][1]))
    )
    values: dict[str, object] = {
        "name": "up", "url": url, "appid": "city-330100", "secret": secret, "direction": "up",
        "businesses": ("0101",), "ca_file": str(credentials.ca), "client_cert": cert, "client_key": key,
        "send_timestamp": True,
    }  # fmt: skip
    values.update(changes)
    return LinkSpec(**values)  # type: ignore[arg-type]


def test_the_bound_certificate_and_a_timestamp_carry_the_upload(
    parent: tuple[str, str, Credentials, Path], city: Node
) -> None:
    url, secret, credentials, home = parent
    city.links.add(_spec(url, secret, credentials, "bound"))

    [report] = city.sync.run()

    assert (report.state, report.records) == ("ok", 6)
    province = open_home(home)
    try:
        assert held(province, "0101") == held(city, "0101")
    finally:
        province.close()


def test_another_certificate_or_none_fails_the_link(parent: tuple[str, str, Credentials, Path], city: Node) -> None:
    url, secret, credentials, _ = parent
    city.links.add(_spec(url, secret, credentials, "other"))
    [report] = city.sync.run()
    assert (report.state, report.records) == ("failed", 0)
    # The parent tells an unbound certificate apart (unsigned: it could not trust the caller).
    assert report.error is not None and "must present its bound client certificate" in report.error
    city.links.remove("up")
    city.links.add(_spec(url, secret, credentials, None))
    [report] = city.sync.run()
    assert (report.state, report.records) == ("failed", 0)
    # No certificate at all: the TLS handshake itself is refused (--client-ca).
    assert report.error is not None and "could not reach the parent" in report.error


def test_without_the_timestamp_the_parent_refuses(parent: tuple[str, str, Credentials, Path], city: Node) -> None:
    url, secret, credentials, _ = parent
    city.links.add(_spec(url, secret, credentials, "bound", send_timestamp=False))
    [report] = city.sync.run()
    assert report.state == "failed"
    assert report.error is not None and "timestamp" in report.error


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_key": None}, "--client-cert and --client-key go together"),
        ({"url": "http://127.0.0.1:9/tzsb/exchange"}, "need an https:// --url"),
        ({"ca_file": "/nonexistent/ca.pem"}, "the link's TLS files cannot be used"),
    ],
)
def test_unusable_tls_options_are_refused_when_the_link_is_added(
    changes: dict[str, object], message: str, tmp_path: Path, city: Node
) -> None:
    credentials = issue(tmp_path)
    url = str(changes.pop("url", "https://127.0.0.1:9/tzsb/exchange"))
    with pytest.raises(ConfigurationError, match=message.replace(".", r"\.")):
        city.links.add(_spec(url, "s", credentials, "bound", **changes))
    assert city.links.list() == []
