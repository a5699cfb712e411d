"""Fake DingTalk / WeCom / Feishu / webhook receivers on 127.0.0.1 that check signatures as each
platform documents them (written from the documentation, independently of zhijian.notify.signing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    valid: bool
    why: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receivers:
    secrets: dict[str, str]
    wecom_key: str = "wecom-key-123"
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    release_broken: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def urls(self) -> dict[str, str]:
        return {"dingtalk": f"{self.base}/dingtalk/robot/send?access_token=ding-token",
                "wecom": f"{self.base}/wecom/cgi-bin/webhook/send?key={self.wecom_key}",
                "feishu": f"{self.base}/feishu/open-apis/bot/v2/hook/feishu-hook-id",
                "webhook": f"{self.base}/webhook", "broken": f"{self.base}/broken"}

    def of(self, kind: str) -> list[Received]:
        with self.arrived:
            return [r for r in self.received if r.path == kind]

    def wait(self, predicate: Any, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"receivers got only {[(r.path, r.valid, r.why) for r in self.received]}")
                self.arrived.wait(remaining)
            return list(self.received)

    def check(self, kind: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes,
              body: dict[str, Any]) -> tuple[bool, str]:
        now = time.time()
        if kind == "dingtalk":
            # 加签: timestamp (ms) + "\n" + secret, HmacSHA256 keyed by the secret, Base64, then urlEncode
            ts, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
            if not ts.isdigit() or abs(int(ts) / 1000 - now) > 3600:
                return False, "timestamp missing or more than 1 h off"
            secret = self.secrets["dingtalk"]
            expected = base64.b64encode(hmac.new(secret.encode("utf-8"), f"{ts}\n{secret}".encode(),
                                                 hashlib.sha256).digest()).decode()
            ok = hmac.compare_digest(sign, expected) and query.get("access_token") == ["ding-token"]
            return ok and body.get("msgtype") == "markdown", "signature" if not ok else "ok"
        if kind == "feishu":
            # 签名校验: timestamp (s) + "\n" + secret is the HmacSHA256 key over an empty message, Base64
            ts, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            if not ts.isdigit() or abs(int(ts) - now) > 3600:
                return False, "timestamp missing or more than 1 h off"
            key = f"{ts}\n{self.secrets['feishu']}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            ok = hmac.compare_digest(sign, expected)
            return ok and body.get("msg_type") == "interactive", "signature" if not ok else "ok"
        if kind == "wecom":
            ok = query.get("key") == [self.wecom_key] and body.get("msgtype") == "markdown"
            return ok, "key" if not ok else "ok"
        if kind == "webhook":
            ts = headers.get("x-zhijian-timestamp", "")
            mac = hmac.new(self.secrets["webhook"].encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
            ok = ts.isdigit() and hmac.compare_digest(headers.get("x-zhijian-signature", ""), f"sha256={mac}")
            return ok, "signature" if not ok else "ok"
        return False, "unknown"

    def start(self) -> Receivers:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return None

            def do_POST(self) -> None:
                parsed = urllib.parse.urlparse(self.path)
                kind = parsed.path.strip("/").split("/")[0]
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                if kind == "broken":
                    owner.release_broken.wait(60)
                    with owner.arrived:
                        owner.received.append(Received("broken", False, "broken", {}, {}))
                        owner.arrived.notify_all()
                    self.send_response(500)
                    self.end_headers()
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                valid, why = owner.check(kind, urllib.parse.parse_qs(parsed.query), headers, raw, body)
                with owner.arrived:
                    owner.received.append(Received(kind, valid, why, body, headers))
                    owner.arrived.notify_all()
                answer = {"code": 0, "msg": "success"} if kind == "feishu" else {"errcode": 0, "errmsg": "ok"}
                if not valid:
                    answer = {"code": 19021, "msg": "sign match fail"} if kind == "feishu" else \
                        {"errcode": 310000, "errmsg": "sign not match"}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release_broken.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def card_text(received: Received) -> str:
    """The markdown of a card, whatever the platform's envelope."""
    body = received.body
    if "markdown" in body and isinstance(body["markdown"], dict):
        return str(body["markdown"].get("text") or body["markdown"].get("content"))
    if "card" in body:
        return str(body["card"]["elements"][0]["content"])
    return str(body.get("markdown", ""))
