"""Child processes that do not outlive their parent."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for a child: it gets SIGTERM when the process that started it dies, even by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``), so a killed supervisor or broker wrapper leaves no orphan holding a port."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: orderly shutdown still applies
