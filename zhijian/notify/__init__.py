"""Outbound pushes of alerts (DingTalk, WeCom, Feishu, a signed webhook) and the escalation ladder.

``zhijian notify`` runs :class:`zhijian.notify.service.Notifier` as its own process with its own
consumers of ``chat.alerts`` and ``chat.alert-actions``: a slow or failing receiver never slows the
pipeline, and one channel's failures never hold up another channel (each has its own queue).
"""
