"""URLs of the worker's pages, with every id escaped (a ``?`` or ``/`` in an id stays part of it)."""

from __future__ import annotations

from urllib.parse import quote

from zhijian.core.settings import Settings


def worker_url(settings: Settings, *parts: str) -> str:
    """``{worker_url}/zhijian/<part>/<part>/`` with each part escaped."""
    return f"{settings.worker_url}/zhijian/" + "".join(f"{quote(part, safe='')}/" for part in parts)
