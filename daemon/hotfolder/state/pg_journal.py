"""The fleet journal: the same record as the SQLite journal, kept in PostgreSQL so that several
workstations on one shared drop folder deliver each submission exactly once (issue 13).

It answers every read and write the SQLite journal does (same rows, same ALLOWED_FROM, same
history), and adds what a fleet needs:

- `node`: every row and history line says which workstation wrote it.
- Claims: a node works on a submission only while it holds its lease. `claim` takes one row
  with `SELECT ... FOR UPDATE SKIP LOCKED` (two nodes racing get one claim, the other none),
  sets `owner` and `lease_until` and bumps the row's fencing counter `fence`. Leases are timed
  by the DATABASE's clock (`now()`), never a node's: a node whose clock is minutes off can
  neither steal a live lease nor keep a dead one.
- Fencing: writes that must come from the current holder (`transition_fenced`,
  `start_manifest_session`, `mark_attempt`) check owner and fence in the same transaction, under
  the row's lock, so they are ordered against any takeover: a node whose lease was taken over
  can never start a manifest session or let ascp read a manifest.
- Evidence: the attempt marker and the receipts that decide `held` live here, not in one
  node's state folder, so any node that takes a dead node's submission over decides as the
  dead node would have.
- `nodes`: one row per workstation with its heartbeat, for `hotfolder nodes`.
- Wake-ups: `record_ready` and `release` send NOTIFY; `Wakeups` listens. A lost notification
  only delays work until the next poll: nothing depends on it. No advisory locks (they vanish
  with a dropped connection, silently).

Faults: a database that cannot be reached makes every call raise `JournalUnavailable`, with
a backoff between tries (pg_connection).

The rooms: `pg_schema` (tables and migrations), `pg_connection` (pool, transactions, backoff,
the config's `journal:` block, wake-ups), `pg_claims` (nodes, claims, leases, fencing,
evidence), `pg_reads` and `pg_writes`. `PgJournal` puts them together; callers import every
name from here.
"""

from __future__ import annotations

from typing import Any

from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.state.pg_claims import Claim, Evidence, LeaseLost, NodeRow
from hotfolder.state.pg_connection import (
    CHANNEL,
    DEFAULT_LEASE,
    Backoff,
    FleetSettings,
    NodeNameInUse,
    Wakeups,
    default_node,
    masked,
)
from hotfolder.state.pg_reads import PgReads
from hotfolder.state.pg_schema import MIGRATIONS, SCHEMA_VERSION, migrate
from hotfolder.state.pg_writes import PgRecords, PgTransitions

__all__ = [
    "CHANNEL",
    "DEFAULT_LEASE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Backoff",
    "Claim",
    "Evidence",
    "FleetSettings",
    "JournalUnavailable",
    "LeaseLost",
    "NodeNameInUse",
    "NodeRow",
    "PgJournal",
    "Wakeups",
    "default_node",
    "masked",
    "migrate",
]


class PgJournal(PgTransitions, PgRecords, PgReads):
    """One node's handle on the fleet journal. Raises JournalUnavailable or JournalTooNew on
    open; `close` it (the pool runs threads)."""

    @classmethod
    def open(cls, settings: FleetSettings, **kw: Any) -> PgJournal:
        """The journal the config names; raises JournalError (bad password source) or
        JournalUnavailable / JournalTooNew like the constructor."""
        return cls(settings.url, node=settings.node, password=settings.password(), **kw)
