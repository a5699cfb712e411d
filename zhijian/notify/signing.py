"""Signatures of the outbound channels, each as its platform documents it.

- DingTalk custom robot (加签): string_to_sign = ``"{timestamp}\\n{secret}"`` with the timestamp in
  milliseconds; HMAC-SHA256 keyed with the secret over that string; Base64; URL-encoded; sent as the
  ``timestamp`` and ``sign`` query parameters (open.dingtalk.com, 自定义机器人安全设置).
- Feishu custom bot (签名校验): the string ``"{timestamp}\\n{secret}"`` (timestamp in seconds) is the
  HMAC-SHA256 *key* over an empty message; Base64; sent as ``timestamp`` and ``sign`` in the JSON body
  (open.feishu.cn, 自定义机器人使用指南).
- WeCom group robot: no signature; the webhook URL's ``key`` is the credential.
- Generic webhook: ``X-Zhijian-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}." + body)>`` with
  ``X-Zhijian-Timestamp`` (seconds), so a receiver can reject replays and forgeries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The URL-encoded ``sign`` query value."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()
