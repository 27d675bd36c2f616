"""HTTPS with optional client certificates (spec 7.1.1, 7.2: CA authentication).

uvicorn does not yet hand the client certificate to the application, so the HTTP protocol is
extended to put it in the ASGI TLS extension (``scope["extensions"]["tls"]``), as the ASGI spec
describes; the node then binds a certificate's SHA-256 fingerprint to an appid.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tzsb.web.headers import DEFAULT_TIMEOUTS, MAX_HEADER_BYTES, HeaderLimitProtocol, ReadTimeouts, http_protocol


class ClientCertificateProtocol(HeaderLimitProtocol):
    """The node's httptools protocol (header limit included), exposing the peer certificate (DER) of
    each TLS connection to the app."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        certificate = ssl_object.getpeercert(binary_form=True)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            extensions = scope.setdefault("extensions", {})
            extensions["tls"] = {"client_cert_der": certificate, "tls_version": ssl_object.version()}
            await inner(scope, receive, send)

        self.app = app


def client_fingerprint(scope: Any) -> str | None:
    """SHA-256 (lower-case hex) of the verified client certificate, if the connection had one."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    der = tls.get("client_cert_der")
    return hashlib.sha256(der).hexdigest() if der else None


@dataclass(frozen=True, slots=True)
class TLSOptions:
    certificate: Path
    key: Path
    client_ca: Path | None = None

    def uvicorn_options(
        self, max_header_bytes: int = MAX_HEADER_BYTES, timeouts: ReadTimeouts = DEFAULT_TIMEOUTS
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ssl_certfile": str(self.certificate),
            "ssl_keyfile": str(self.key),
            "http": http_protocol(max_header_bytes, ClientCertificateProtocol, timeouts),
        }
        if self.client_ca is not None:
            options["ssl_ca_certs"] = str(self.client_ca)
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        return options
