"""Reading the JDDC sample (real, desensitised JD.com chats) for replay, benchmarks and scans.

The corpus lives outside the repository (``../shared/data/jddc_sample``, or ``ZHIJIAN_JDDC``);
nothing in the test suite needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_JDDC = Path(__file__).resolve().parents[3] / "shared" / "data" / "jddc_sample" / "chat_0.1per.txt"


def jddc_path() -> Path:
    return Path(os.environ.get("ZHIJIAN_JDDC", str(DEFAULT_JDDC)))


def read_jddc(path: Path | None = None, *, max_chars: int = 2000) -> list[tuple[str, str, str]]:
    """(session id, sender, text) rows; sender is "agent" or "customer". Empty texts are skipped."""
    rows = []
    for line in (path or jddc_path()).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 7 and parts[6].strip() and parts[6] != "NULL":
            rows.append((parts[0], "agent" if parts[2] == "1" else "customer", parts[6][:max_chars]))
    return rows
