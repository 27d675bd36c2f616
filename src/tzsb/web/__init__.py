"""HTTP framing of the node: the spec interface, health, (later) the console."""

from tzsb.web.headers import ReadTimeouts, http_protocol
from tzsb.web.server import create_app, create_asgi
from tzsb.web.tls import TLSOptions, client_fingerprint

__all__ = ["ReadTimeouts", "TLSOptions", "client_fingerprint", "create_app", "create_asgi", "http_protocol"]
