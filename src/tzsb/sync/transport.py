"""One signed exchange with the parent: the request built and signed as the spec says (6.5),
the answer checked before anything in it is believed.

Anything but a well-formed answer for this very request, signed with the link's secret, is a
``LinkFailure``: the network (reset, timeout, cut short), the parent's server (5xx), an unsigned
refusal (the parent could not tell who we are: E_APPID, E_SIGN, E_LOCKED …), an answer whose
signature does not verify or that answers another request. Only a verified answer says what
happened to a batch.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson

from tzsb.protocol import RESULT_SUCCESS, sign, verify
from tzsb.sync.links import Link, tls_context

JSON_UTF8: Final = "application/json; charset=utf-8"


class LinkFailure(Exception):
    """The exchange with the parent failed for a reason that is not about particular records."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Answer:
    """A verified answer of the parent."""

    ok: bool
    code: str
    message: str
    datalist: dict[str, Any]
    #: The per-record details of a refusal (``index`` into the batch sent), or the records of a query.
    busilist: list[Any] = field(default_factory=list)


def derived_random(link: Link, *parts: object) -> str:
    """A batch's ``random``: the same for the same link, full-upload generation and batch, so that a
    batch sent again after a lost answer is a replay the parent answers from its first answer
    instead of writing twice; different for anything else."""
    text = "|".join([link.uid, str(link.generation), *(str(part) for part in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def peer_of(url: str) -> str:
    """The parent as the log names it (host and port, never a path or query)."""
    address = urlsplit(url)
    return f"{address.hostname}:{address.port or (443 if address.scheme == 'https' else 80)}"[:64]


class ParentSession:
    """Sends signed requests over one link and checks each answer."""

    def __init__(self, link: Link, transport: httpx.BaseTransport | None = None) -> None:
        self.link = link
        verify: ssl.SSLContext | bool = True
        if link.ca_file is not None or link.client_cert is not None:
            verify = tls_context(link.ca_file, link.client_cert, link.client_key)
        self._http = httpx.Client(
            timeout=link.timeout_seconds, transport=transport, follow_redirects=False, verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ParentSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request_body(self, busicode: str, action: str, busilist_text: str, random: str) -> bytes:
        params = {
            "appid": self.link.appid,
            "busicode": busicode,
            "action": action,
            "busilist": busilist_text,
            "random": random,
        }
        if self.link.send_timestamp:
            # Signed like the rest; a batch sent again carries a new one (the parent then answers
            # E_REPLAY to its random, and the runner sends it under a new random: see runner).
            params["timestamp"] = str(int(time.time()))
        return orjson.dumps({**params, "sign": sign(params, self.link.secret, self.link.sign_algorithm)})

    def exchange(self, busicode: str, action: str, busilist_text: str, random: str) -> Answer:
        """Send one request; the verified answer, or ``LinkFailure``."""
        body = self.request_body(busicode, action, busilist_text, random)
        seconds = self.link.timeout_seconds
        try:
            reply = self._http.post(self.link.url, content=body, headers={"content-type": JSON_UTF8})
        except httpx.TimeoutException:
            raise LinkFailure("timeout", f"上级节点 {seconds:g} 秒内未应答 / no answer within {seconds:g} s") from None
        except httpx.HTTPError as exc:
            raise LinkFailure(
                "network", f"无法连接上级节点或连接中断 / could not reach the parent: {type(exc).__name__}: {exc}"[:300]
            ) from None
        if reply.status_code >= 500:
            raise LinkFailure(
                "http", f"上级节点返回 HTTP {reply.status_code} / the parent answered HTTP {reply.status_code}"
            )
        try:
            answer = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            raise LinkFailure(
                "answer",
                f"上级节点的应答不是完整的 JSON（HTTP {reply.status_code}，可能被截断）/ the parent's answer is not "
                f"complete JSON (HTTP {reply.status_code}; cut short?)",
            ) from None
        return self._checked(answer, random, reply.status_code)

    def _checked(self, answer: Any, random: str, status: int) -> Answer:
        shape = LinkFailure(
            "answer",
            f"上级节点的应答不符合接口规范的格式（HTTP {status}）/ the parent's answer is not in the spec's shape "
            f"(HTTP {status})",
        )
        if not isinstance(answer, dict):
            raise shape
        raw_datalist = answer.get("datalist")
        # Table 8 shows datalist as an object; a platform that sends it as JSON text signed that text.
        if isinstance(raw_datalist, str):
            datalist_text = raw_datalist
            try:
                datalist = orjson.loads(raw_datalist)
            except orjson.JSONDecodeError:
                raise shape from None
        elif isinstance(raw_datalist, dict):
            datalist = raw_datalist
            datalist_text = orjson.dumps(raw_datalist).decode("utf-8")
        else:
            raise shape
        if not isinstance(datalist, dict) or not isinstance(datalist.get("result"), str):
            raise shape
        code = str(datalist.get("code") or "")
        message = str(datalist.get("message") or "")
        received = answer.get("sign")
        if received == "" and datalist["result"] != RESULT_SUCCESS:
            # The parent could not tell who we are, so it could not sign: its refusal is all we learn.
            raise LinkFailure(
                code or "refused", f"上级节点拒绝（未签名）/ the parent refused (unsigned): {message}"[:500]
            )
        params = {
            "appid": str(answer.get("appid", "")),
            "busicode": str(answer.get("busicode", "")),
            "datalist": datalist_text,
            "random": str(answer.get("random", "")),
        }
        if not isinstance(received, str) or not verify(params, self.link.secret, self.link.sign_algorithm, received):
            raise LinkFailure(
                "answer-sign",
                "上级节点应答的签名验证失败，应答不可信，未采用 / the parent's answer signature does not verify; "
                "the answer was not used",
            )
        if params["random"] != random or params["appid"] != self.link.appid:
            raise LinkFailure("answer", "上级节点的应答不属于本次请求 / the parent's answer is for another request")
        busilist = datalist.get("busilist")
        return Answer(
            ok=datalist["result"] == RESULT_SUCCESS,
            code=code,
            message=message,
            datalist=datalist,
            busilist=busilist if isinstance(busilist, list) else [],
        )
