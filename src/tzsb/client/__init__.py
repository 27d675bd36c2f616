"""The client SDK: sign, send and verify spec requests. Imports nothing of the server."""

from tzsb.client.sdk import ExchangeClient, ExchangeResponse, build_request
from tzsb.errors import ResponseSignatureError

__all__ = ["ExchangeClient", "ExchangeResponse", "ResponseSignatureError", "build_request"]
