"""The client SDK: sign, send and verify spec requests. Imports nothing of the server."""

from tzsb.client.sdk import ExchangeClient, ExchangeResponse, ResponseSignatureError, build_request

__all__ = ["ExchangeClient", "ExchangeResponse", "ResponseSignatureError", "build_request"]
