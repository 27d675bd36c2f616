"""HTTP framing of the node: the spec interface, health, (later) the console."""

from tzsb.web.server import create_app, create_asgi

__all__ = ["create_app", "create_asgi"]
