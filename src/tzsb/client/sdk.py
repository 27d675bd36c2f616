"""A client for any node that speaks the spec interface (ours or another vendor's)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from tzsb.errors import ResponseSignatureError
from tzsb.protocol import RESULT_SUCCESS, SignAlgorithm, response_signed_params, sign, verify


def build_request(
    appid: str,
    secret: str,
    algorithm: SignAlgorithm,
    busicode: str,
    action: str,
    busilist: list[dict[str, Any]],
    random: str | None = None,
    *,
    busilist_as_string: bool = True,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A signed request object. ``busilist`` goes as a JSON string (table 5) unless asked otherwise.

    ``timestamp`` (Unix seconds) adds the optional signed ``timestamp`` parameter.
    """
    busilist_text = orjson.dumps(busilist).decode("utf-8")
    params = {
        "appid": appid,
        "busicode": busicode,
        "action": action,
        "busilist": busilist_text,
        "random": random or uuid.uuid4().hex,
    }
    if timestamp is not None:
        params["timestamp"] = str(timestamp)
    signature = sign(params, secret, algorithm)
    request: dict[str, Any] = {**params, "sign": signature}
    if not busilist_as_string:
        request["busilist"] = busilist
    return request


@dataclass(frozen=True, slots=True)
class ExchangeResponse:
    body: dict[str, Any]

    @property
    def datalist(self) -> dict[str, Any]:
        datalist = self.body.get("datalist")
        return datalist if isinstance(datalist, dict) else {}

    @property
    def ok(self) -> bool:
        return self.datalist.get("result") == RESULT_SUCCESS

    @property
    def code(self) -> str | None:
        code = self.datalist.get("code")
        return code if isinstance(code, str) else None

    @property
    def message(self) -> str:
        return str(self.datalist.get("message", ""))

    @property
    def records(self) -> list[dict[str, Any]]:
        busilist = self.datalist.get("busilist")
        return busilist if isinstance(busilist, list) else []


class ExchangeClient:
    """Signs each request with the app's secret and checks the signature of each answer."""

    def __init__(
        self,
        url: str,
        appid: str,
        secret: str,
        algorithm: SignAlgorithm = SignAlgorithm.MD5,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        verify_responses: bool = True,
        send_timestamp: bool = False,
    ) -> None:
        self.url = url
        self.appid = appid
        self.secret = secret
        self.algorithm = algorithm
        self.verify_responses = verify_responses
        self.send_timestamp = send_timestamp
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(
        self, busicode: str, action: str, busilist: list[dict[str, Any]], random: str | None = None
    ) -> ExchangeResponse:
        request = build_request(
            self.appid,
            self.secret,
            self.algorithm,
            busicode,
            action,
            busilist,
            random,
            timestamp=int(time.time()) if self.send_timestamp else None,
        )
        return self.send_raw(orjson.dumps(request))

    def send_raw(self, body: bytes, content_type: str = "application/json; charset=utf-8") -> ExchangeResponse:
        reply = self._http.post(self.url, content=body, headers={"content-type": content_type})
        reply.raise_for_status()
        response = ExchangeResponse(orjson.loads(reply.content))
        if self.verify_responses:
            self._verify(response)
        return response

    def _verify(self, response: ExchangeResponse) -> None:
        received = response.body.get("sign")
        if received == "" and not response.ok:
            return  # the node could not identify us, so it could not sign (spec: empty sign)
        params = response_signed_params(response.body)
        if not isinstance(received, str) or not verify(params, self.secret, self.algorithm, received):
            raise ResponseSignatureError("the response's sign does not verify with this app's secret")

    def query(self, busicode: str, conditions: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every record matching ``conditions``, following ``next_cursor`` page by page."""
        cursor: str | None = None
        while True:
            page_conditions = dict(conditions) if cursor is None else {**conditions, "_cursor": cursor}
            response = self.send(busicode, "04", [page_conditions])
            if not response.ok:
                raise RuntimeError(f"{response.code}: {response.message}")
            yield from response.records
            cursor = response.datalist.get("next_cursor")
            if not cursor:
                return
