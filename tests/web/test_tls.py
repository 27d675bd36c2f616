"""HTTPS and mutual TLS with a CA the test generates; a certificate bound to an appid (spec 7.1.1, 7.2)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support import device
from tests.web.servers import free_port, tzsb
from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass(frozen=True)
class Credentials:
    ca: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path, str]]  # name -> (cert, key, sha256 fingerprint)


def issue(tmp: Path) -> Credentials:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("tzsb test CA"))
        .issuer_name(_name("tzsb test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(common: str, server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256()), key

    server_cert, server_key = leaf("localhost", server=True)
    (tmp / "server.pem").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, tmp / "server.key")
    clients: dict[str, tuple[Path, Path, str]] = {}
    for name in ("bound", "other"):
        cert, key = leaf(name, server=False)
        (tmp / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, tmp / f"{name}.key")
        fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        clients[name] = (tmp / f"{name}.pem", tmp / f"{name}.key", fingerprint)
    return Credentials(tmp / "ca.pem", tmp / "server.pem", tmp / "server.key", clients)


@dataclass(frozen=True)
class TLSServer:
    url: str
    secret: str
    credentials: Credentials


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TLSServer]:
    credentials = issue(tmp_path)
    home = tmp_path / "node"
    assert tzsb("init", "--home", str(home), "--region", "330000").returncode == 0
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", "hz-city", "--region", "330100",
        "--busicode", "140101", "--action", "01", "--action", "04", "--json",
        "--cert-fingerprint", credentials.clients["bound"][2],
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = json.loads(created.stdout)["secret"]
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tzsb",
                "serve",
                "--home",
                str(home),
                "--port",
                str(port),
                "--tls-cert",
                str(credentials.server_cert),
                "--tls-key",
                str(credentials.server_key),
                "--client-ca",
                str(credentials.ca),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    url = f"https://127.0.0.1:{port}/tzsb/exchange"
    context = client_context(credentials, "bound")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"TLS server did not start: {log.read_text()}")
                time.sleep(0.1)
        yield TLSServer(url, secret, credentials)
    finally:
        process.terminate()
        process.wait(timeout=15)


def client_context(credentials: Credentials, name: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(credentials.ca))
    if name is not None:
        cert, key, _ = credentials.clients[name]
        context.load_cert_chain(str(cert), str(key))
    return context


def post(server: TLSServer, context: ssl.SSLContext) -> dict[str, object]:
    request = build_request("hz-city", server.secret, SignAlgorithm.MD5, "140101", "01", [device(1)])
    reply = httpx.post(server.url, json=request, verify=context, timeout=10)
    answer: dict[str, object] = reply.json()
    return answer


def test_the_bound_certificate_is_accepted(tls_server: TLSServer) -> None:
    answer = post(tls_server, client_context(tls_server.credentials, "bound"))
    assert answer["datalist"]["result"] == "0001", answer  # type: ignore[index]


def test_another_certificate_of_the_ca_is_refused_for_this_app(tls_server: TLSServer) -> None:
    answer = post(tls_server, client_context(tls_server.credentials, "other"))
    assert answer["datalist"]["code"] == "E_FORBIDDEN"  # type: ignore[index]
    assert answer["datalist"]["message"] == (  # type: ignore[index]
        "应用 hz-city 须使用已绑定的客户端证书（CA 认证）访问，本次证书未绑定到该应用 / "
        "App hz-city must present its bound client certificate (mutual TLS); this request presented a "
        "certificate not bound to it"
    )


def test_no_client_certificate_fails_the_handshake(tls_server: TLSServer) -> None:
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        post(tls_server, client_context(tls_server.credentials, None))


def test_oversized_headers_get_431_over_tls_too(tls_server: TLSServer) -> None:
    padding = {f"x-pad-{number}": "a" * 4000 for number in range(50)}  # 200 KB
    context = client_context(tls_server.credentials, "bound")
    reply = httpx.get(tls_server.url.replace("/tzsb/exchange", "/healthz"), headers=padding, verify=context)
    assert reply.status_code == 431
    assert reply.text == "请求头过大 / Request header fields too large\n"
