"""The `journal:` block, typed: where a fleet of workstations keeps its shared journal
(PostgreSQL, issue 13). Absent from the config: None, and the journal is SQLite in state_dir."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hotfolder.config.sections import Resolve, Secret, _secret


@dataclass(frozen=True, slots=True)
class JournalSettings:
    url: str  # never carries the password (refused when the journal opens)
    node: str | None = None  # this workstation's name; the host name when None
    password: Secret = field(default_factory=Secret)
    lease_seconds: float = 30.0  # a dead node's claims run out after this (DB clock)


def journal(raw: Mapping[str, Any] | None, resolve: Resolve) -> JournalSettings | None:
    if raw is None:
        return None
    password = _secret(raw, "password_file", "password_credential", resolve)
    return JournalSettings(
        raw["url"], raw.get("node"), password, float(raw.get("lease_seconds", 30.0))
    )
