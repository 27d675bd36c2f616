"""A parent that is not this project: a minimal platform written from the spec alone (6.5 MD5
signing, table 5 requests, table 8 answers), on the standard library's HTTP server. It imports
nothing of ``tzsb``, so a county that uploads to it correctly speaks the spec, not our own dialect.

It keeps, per business type and key, the newest record by ``UPDATE_TIME`` (01) and soft deletes
(03; all-or-nothing, ``E_NOTFOUND`` with per-record details for keys it never held), answers a
replayed ``random`` with its first answer, and refuses unknown apps and bad signatures unsigned.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def md5_sign(params: dict[str, str], secret: str) -> str:
    """6.5: the non-empty parameters but ``sign``, sorted by name, ``name=value`` joined by ``&``,
    then ``&key=<secret>``; MD5, upper-case hex."""
    text = "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "sign" and params[name] != "")
    return hashlib.md5(f"{text}&key={secret}".encode(), usedforsecurity=False).hexdigest().upper()


class OtherPlatform:
    def __init__(
        self, appid: str, secret: str, key_field: str = "EQP_CODE", timestamp_field: str = "UPDATE_TIME"
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.key_field = key_field
        self.timestamp_field = timestamp_field
        self.path = "/platform/exchange"
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted: set[tuple[str, str]] = set()
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtherPlatform:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _answer(self, request: dict[str, Any], datalist: dict[str, Any], signed: bool) -> bytes:
        datalist_text = json.dumps(datalist, ensure_ascii=False, separators=(",", ":"))
        params = {
            "appid": str(request.get("appid", "")),
            "busicode": str(request.get("busicode", "")),
            "datalist": datalist_text,
            "random": str(request.get("random", "")),
        }
        sign = md5_sign(params, self.secret) if signed else ""
        answer = {"appid": params["appid"], "busicode": params["busicode"], "datalist": datalist,
                  "random": params["random"], "sign": sign}  # fmt: skip
        return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()

    def handle(self, request: dict[str, Any]) -> bytes:
        with self._lock:
            self.requests.append(request)
            fields = {
                name: str(request.get(name, "")) for name in ("appid", "busicode", "action", "busilist", "random")
            }
            if fields["appid"] != self.appid:
                return self._answer(request, {"result": "0000", "code": "E_APPID", "message": "unknown app"}, False)
            if request.get("sign") != md5_sign(fields, self.secret):
                return self._answer(request, {"result": "0000", "code": "E_SIGN", "message": "bad sign"}, False)
            if fields["random"] in self.answers:
                return self.answers[fields["random"]]
            business = fields["busicode"][2:]
            batch = json.loads(fields["busilist"])
            datalist: dict[str, Any] = {"result": "0001", "message": "ok"}
            if fields["action"] == "01":
                for record in batch:
                    key = (business, record[self.key_field])
                    stored = self.records.get(key)
                    if stored is None or record[self.timestamp_field] >= stored[self.timestamp_field]:
                        self.records[key] = record
                        self.deleted.discard(key)
            elif fields["action"] == "03":
                missing = [
                    {"index": index, "key": record[self.key_field]}
                    for index, record in enumerate(batch)
                    if (business, record[self.key_field]) not in self.records
                ]
                if missing:
                    datalist = {"result": "0000", "code": "E_NOTFOUND", "message": "not held", "busilist": missing}
                else:
                    self.deleted.update((business, record[self.key_field]) for record in batch)
            else:
                datalist = {"result": "0000", "code": "E_PARAM", "message": "action not supported"}
            answer = self._answer(request, datalist, True)
            self.answers[fields["random"]] = answer
            return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                payload = json.loads(self.rfile.read(length))
                answer = platform.handle(payload) if self.path == platform.path else b"{}"
                self.send_response(200 if self.path == platform.path else 404)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
