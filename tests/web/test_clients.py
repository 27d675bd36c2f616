"""The client address behind reverse proxies (issue: lock-out behind a proxy), and the settings that
name the proxies and the networks that may read /healthz in full."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tzsb.errors import ConfigurationError
from tzsb.settings import load_settings
from tzsb.web.clients import ClientAddresses, in_networks, parse_networks

PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy() -> ClientAddresses:
    return ClientAddresses(("10.0.0.0/24", "fd00::/64"))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() -> None:
    addresses = ClientAddresses(())
    assert addresses.resolve("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"
    assert addresses.resolve(PROXY, ["203.0.113.7"]) == PROXY


def test_an_untrusted_peer_cannot_pick_its_address(behind_proxy: ClientAddresses) -> None:
    # A stranger writing the header itself, to dodge its lock-out or to frame someone else.
    assert behind_proxy.resolve("203.0.113.50", ["203.0.113.7"]) == "203.0.113.50"
    assert behind_proxy.resolve("10.0.1.2", ["203.0.113.7"]) == "10.0.1.2"  # next to, not in, the range


def test_from_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client(behind_proxy: ClientAddresses) -> None:
    assert behind_proxy.resolve(PROXY, ["203.0.113.7"]) == "203.0.113.7"
    # The caller wrote 198.51.100.1 itself; our proxy appended what it saw: the caller stays 203.0.113.7.
    assert behind_proxy.resolve(PROXY, ["198.51.100.1, 203.0.113.7"]) == "203.0.113.7"
    # Two of our proxies in a row are skipped.
    assert behind_proxy.resolve(PROXY, ["198.51.100.1, 203.0.113.7, 10.0.0.9"]) == "203.0.113.7"


def test_every_forwarded_for_header_counts_in_order(behind_proxy: ClientAddresses) -> None:
    assert behind_proxy.resolve(PROXY, ["198.51.100.1", "203.0.113.7, 10.0.0.9"]) == "203.0.113.7"
    assert behind_proxy.resolve(PROXY, ["203.0.113.7", "198.51.100.1"]) == "198.51.100.1"


def test_no_header_or_only_our_proxies_in_it(behind_proxy: ClientAddresses) -> None:
    assert behind_proxy.resolve(PROXY, []) == PROXY
    assert behind_proxy.resolve(PROXY, [" , "]) == PROXY
    # Only trusted addresses: the left-most may be one a caller inside those networks chose, so the
    # peer is used (a caller could otherwise pick any trusted address to dodge or frame a lock-out).
    assert behind_proxy.resolve(PROXY, ["10.0.0.7, 10.0.0.9"]) == PROXY


def test_entries_with_a_port(behind_proxy: ClientAddresses) -> None:
    assert behind_proxy.resolve(PROXY, ["203.0.113.5:51234"]) == "203.0.113.5"
    assert behind_proxy.resolve(PROXY, ["[2001:db8::1]:443"]) == "2001:db8::1"
    assert behind_proxy.resolve(PROXY, ["2001:db8::1"]) == "2001:db8::1"


def test_ipv6_and_ipv4_mapped_addresses(behind_proxy: ClientAddresses) -> None:
    assert behind_proxy.resolve("fd00::5", ["2001:db8::1"]) == "2001:db8::1"
    assert behind_proxy.resolve("::ffff:10.0.0.2", ["::ffff:203.0.113.7"]) == "203.0.113.7"
    assert behind_proxy.resolve(PROXY, ["2001:DB8:0:0::1"]) == "2001:db8::1"  # one spelling per address


def test_a_malformed_entry_means_the_peer_and_one_warning_per_proxy(
    behind_proxy: ClientAddresses, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tzsb.web.clients"):
        assert behind_proxy.resolve(PROXY, ["203.0.113.7, unknown"]) == PROXY
        assert behind_proxy.resolve(PROXY, ["203.0.113.7:x"]) == PROXY  # not a port
        assert behind_proxy.resolve("10.0.0.3", ["not-an-ip"]) == "10.0.0.3"
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert PROXY in warnings[0] and "10.0.0.3" in warnings[1]


def test_garbage_left_of_the_client_is_never_read(behind_proxy: ClientAddresses) -> None:
    # Else a caller could push itself back onto the shared proxy address, and its failures onto everyone.
    assert behind_proxy.resolve(PROXY, ["garbage, 203.0.113.7"]) == "203.0.113.7"


def test_in_networks() -> None:
    loopback = parse_networks(("127.0.0.0/8", "::1/128"))
    assert in_networks("127.0.0.1", loopback)
    assert in_networks("::1", loopback)
    assert in_networks("::ffff:127.0.0.1", loopback)
    assert not in_networks("203.0.113.7", loopback)
    assert not in_networks("testclient", loopback)
    assert not in_networks("", loopback)


def test_network_settings_defaults_environment_and_file(tmp_path: Path) -> None:
    defaults = load_settings(tmp_path, environ={})
    assert defaults.trusted_proxies == ()
    assert defaults.health_details_from == ("127.0.0.0/8", "::1/128")
    assert defaults.max_header_bytes == 16 * 1024
    documented = defaults.documented()
    assert {"trusted_proxies", "health_details_from", "max_header_bytes"} <= documented.keys()

    from_env = load_settings(
        tmp_path,
        environ={"TZSB_TRUSTED_PROXIES": "10.0.0.0/24, 10.0.1.5", "TZSB_HEALTH_DETAILS_FROM": ""},
    )
    assert from_env.trusted_proxies == ("10.0.0.0/24", "10.0.1.5")
    assert from_env.health_details_from == ()

    (tmp_path / "tzsb.toml").write_text('trusted_proxies = ["192.168.0.0/16"]\nmax_header_bytes = 8192\n')
    from_file = load_settings(tmp_path, environ={})
    assert from_file.trusted_proxies == ("192.168.0.0/16",)
    assert from_file.max_header_bytes == 8192


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TZSB_TRUSTED_PROXIES": "10.0.0.5/24"}, "trusted_proxies: '10.0.0.5/24' is not a network"),
        ({"TZSB_TRUSTED_PROXIES": "proxy.example"}, "trusted_proxies: 'proxy.example' is not a network"),
        ({"TZSB_HEALTH_DETAILS_FROM": "10.0.0.0/33"}, "health_details_from: '10.0.0.0/33' is not a network"),
        ({"TZSB_MAX_HEADER_BYTES": "100"}, "max_header_bytes must be at least 1024"),
    ],
)
def test_bad_network_settings_are_refused(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(tmp_path, environ=environ)
