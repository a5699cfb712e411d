"""The roles a user of the floor has (the store keeps users, the API checks permissions; the CLI offers these)."""

from __future__ import annotations

ROLES = ("admin", "supervisor", "floor_lead", "qa", "agent")
