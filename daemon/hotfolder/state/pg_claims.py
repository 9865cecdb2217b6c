"""The fleet journal's claims, leases, fencing and evidence (issue 13).

- Claims: a node works on a submission only while it holds its lease. `claim` takes one row
  with `SELECT ... FOR UPDATE SKIP LOCKED` (two nodes racing get one claim, the other none),
  sets `owner` and `lease_until` and bumps the row's fencing counter `fence`. Leases are timed
  by the DATABASE's clock (`now()`), never a node's.
- Fencing: `_fenced` checks owner and fence under the row's lock, in the caller's
  transaction, so a fenced write is ordered against any takeover.
- Evidence: the attempt marker and the receipts that decide `held` live here, not in one
  node's state folder.
- `nodes`: one row per workstation with its heartbeat, for `hotfolder nodes`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from hotfolder.model import State
from hotfolder.state.journal import StaleTransition
from hotfolder.state.pg_connection import CHANNEL, PgConnection
from hotfolder.state.pg_schema import Conn


class LeaseLost(StaleTransition):
    """A fenced write from a node that no longer holds the submission's lease."""


class Evidence(StrEnum):
    """What decides a submission taken over mid-manifest (transfer/faults): was the manifest
    ever readable by ascp (attempt), did a session's receipt name every file (receipt)."""

    ATTEMPT = "attempt"
    RECEIPT = "receipt"
    TOLD = "told"  # an alert about it was sent (its key as the session): once per fleet


@dataclass(frozen=True, slots=True)
class Claim:
    """A node's hold on one submission: valid while `fence` is the row's and the lease runs."""

    sid: str
    node: str
    fence: int
    lease_until: datetime
    taken_over_from: str | None = None  # the node whose lease had run out, if any


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age: timedelta  # measured by the database's clock, like the leases
    version: str


class PgClaims(PgConnection):
    """Nodes, claims, leases, the fence check and the evidence a takeover decides by."""

    def nodes(self) -> list[NodeRow]:
        with self._tx() as db:
            raws = db.execute(
                "SELECT name, started_at, heartbeat_at, now() - heartbeat_at AS age, version "
                "FROM nodes ORDER BY name"
            ).fetchall()
        return [
            NodeRow(r["name"], r["started_at"], r["heartbeat_at"], r["age"], r["version"])
            for r in raws
        ]

    def claim(self, sid: str, now: datetime) -> Claim | None:
        """Take `sid` for one step, or None: unknown, held by another node whose lease still
        runs (by the database's clock), or being claimed by another node this very moment.
        `now` (this node's clock) only dates the history line of a takeover."""
        with self._tx() as db:
            raw = db.execute(
                "SELECT owner, lease_until > now() AS live FROM submissions WHERE id = %s "
                "FOR UPDATE SKIP LOCKED",
                (sid,),
            ).fetchone()
            if raw is None or (raw["owner"] not in (None, self.node) and raw["live"]):
                return None
            return self._take(db, sid, raw["owner"], now)

    def claim_next(self, states: frozenset[State], now: datetime, limit: int = 1) -> list[Claim]:
        """Take up to `limit` submissions in `states` that nobody holds (or whose holder's
        lease ran out), oldest first; rows other nodes are claiming right now are skipped."""
        with self._tx() as db:
            raws = db.execute(
                "SELECT id, owner FROM submissions WHERE state = ANY(%s) "
                "AND (owner IS NULL OR lease_until <= now()) "
                "ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
                ([str(s) for s in states], limit),
            ).fetchall()
            return [self._take(db, r["id"], r["owner"], now) for r in raws]

    def claimable(self, states: frozenset[State], limit: int = 50) -> list[str]:
        """Ids in `states` that no live lease holds, or that this node held before (a
        restart): what a takeover looks at. Only a look: `claim` decides, row by row."""
        with self._tx() as db:
            raws = db.execute(
                "SELECT id FROM submissions WHERE state = ANY(%s) AND (owner IS NULL "
                "OR owner = %s OR lease_until <= now()) ORDER BY updated_at, id LIMIT %s",
                ([str(s) for s in states], self.node, limit),
            ).fetchall()
        return [r["id"] for r in raws]

    def unfinished(self, limit: int = 50) -> list[str]:
        """Ids this node delivered whose files were not yet archived or deleted (it died, or
        the database dropped it, between `complete` and the archive): only it may do that."""
        with self._tx() as db:
            raws = db.execute(
                "SELECT id FROM submissions WHERE state = %s AND NOT postprocessed "
                "AND delivered_by = %s ORDER BY updated_at, id LIMIT %s",
                (str(State.COMPLETE), self.node, limit),
            ).fetchall()
        return [r["id"] for r in raws]

    def _take(self, db: Conn, sid: str, previous: str | None, now: datetime) -> Claim:
        got = db.execute(
            "UPDATE submissions SET owner = %s, lease_until = now() + %s, fence = fence + 1 "
            "WHERE id = %s RETURNING fence, lease_until, state",
            (self.node, self.lease, sid),
        ).fetchone()
        if got is None:  # cannot happen: our SELECT ... FOR UPDATE holds the row's lock
            raise LeaseLost(f"{sid}: gone while being claimed")
        taken_from = previous if previous not in (None, self.node) else None
        if taken_from is not None:
            self._log(db, sid, now, State(got["state"]), f"taken over from {taken_from}")
        return Claim(sid, self.node, int(got["fence"]), got["lease_until"], taken_from)

    def heartbeat(self, claims: tuple[Claim, ...] = ()) -> tuple[Claim, ...]:
        """Renew this node's heartbeat and the leases of `claims` that are still ours (same
        fence); returns the renewed claims. A claim missing from the answer was lost."""
        with self._tx() as db:
            db.execute("UPDATE nodes SET heartbeat_at = now() WHERE name = %s", (self.node,))
            if not claims:
                return ()
            raws = db.execute(
                "UPDATE submissions s SET lease_until = now() + %s FROM "
                "unnest(%s::text[], %s::bigint[]) AS c(id, fence) "
                "WHERE s.id = c.id AND s.fence = c.fence AND s.owner = %s "
                "RETURNING s.id, s.fence, s.lease_until",
                (self.lease, [c.sid for c in claims], [c.fence for c in claims], self.node),
            ).fetchall()
        return tuple(Claim(r["id"], self.node, int(r["fence"]), r["lease_until"]) for r in raws)

    def release(self, claim: Claim) -> bool:
        """Give the submission back (the step is done or cannot go on here); other nodes are
        woken to look. False if the claim was no longer ours."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE submissions SET owner = NULL, lease_until = NULL "
                "WHERE id = %s AND owner = %s AND fence = %s",
                (claim.sid, self.node, claim.fence),
            )
            if cur.rowcount:
                db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, claim.sid))
            return cur.rowcount == 1

    def _fenced(self, db: Conn, claim: Claim, *, live: bool) -> dict[str, Any]:
        """Lock the row and check that `claim` still holds it (and, if `live`, that its lease
        runs by the database's clock); raise LeaseLost if not. Returns the locked row."""
        raw = db.execute(
            "SELECT state, owner, fence, lease_until > now() AS live FROM submissions "
            "WHERE id = %s FOR UPDATE",
            (claim.sid,),
        ).fetchone()
        if raw is None:
            raise LeaseLost(f"{claim.sid}: no such submission (forgotten?)")
        if raw["owner"] != claim.node or raw["fence"] != claim.fence:
            raise LeaseLost(
                f"{claim.sid}: {claim.node} lost its claim (fence {claim.fence}; now "
                f"{raw['owner'] or 'nobody'} holds fence {raw['fence']})"
            )
        if live and not raw["live"]:
            raise LeaseLost(f"{claim.sid}: {claim.node}'s lease ran out (fence {claim.fence})")
        return raw

    def mark_attempt(self, claim: Claim, session: str) -> None:
        """The attempt marker: ascp may now read the manifest. Fenced like the session's start,
        so a node taken over cannot write it after the new holder looked for it."""
        with self._tx() as db:
            self._fenced(db, claim, live=True)
            db.execute(
                "INSERT INTO evidence (submission_id, session, kind, node, fence) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (submission_id, session, kind) DO "
                "UPDATE SET node = excluded.node, fence = excluded.fence, at = now()",
                (claim.sid, session, str(Evidence.ATTEMPT), self.node, claim.fence),
            )

    def unmark_attempt(self, claim: Claim, session: str) -> None:
        """Proven that nothing of the session left (a local target's copy that failed
        before its first rename): a takeover may send it without a hold."""
        with self._tx() as db:
            self._fenced(db, claim, live=False)
            db.execute(
                "DELETE FROM evidence WHERE submission_id = %s AND session = %s AND kind = %s",
                (claim.sid, session, str(Evidence.ATTEMPT)),
            )

    def put_receipt(self, sid: str, session: str, body: str, fence: int) -> None:
        """A session's receipt (what ascp says it delivered). Not fenced: proof of delivery is
        kept whoever holds the lease now, so a new holder decides `complete`, not `held`."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO evidence (submission_id, session, kind, body, node, fence) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (submission_id, session, kind) "
                "DO UPDATE SET body = excluded.body, node = excluded.node, "
                "fence = excluded.fence, at = now()",
                (sid, session, str(Evidence.RECEIPT), body, self.node, fence),
            )

    def evidence(self, sid: str, session: str, kind: Evidence) -> str | None:
        """The body of that piece of evidence ('' for an attempt marker), or None."""
        with self._tx() as db:
            raw = db.execute(
                "SELECT body FROM evidence WHERE submission_id = %s AND session = %s AND kind = %s",
                (sid, session, str(kind)),
            ).fetchone()
        return None if raw is None else str(raw["body"])

    def attempted(self, sid: str, session: str) -> bool:
        return self.evidence(sid, session, Evidence.ATTEMPT) is not None

    def receipt(self, sid: str, session: str) -> str | None:
        return self.evidence(sid, session, Evidence.RECEIPT)

    def tell_once(self, sid: str, about: str) -> bool:
        """The first node to ask tells people (an alert about a hold every node sees)."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO evidence (submission_id, session, kind, node, fence) "
                "VALUES (%s, %s, %s, %s, 0) ON CONFLICT DO NOTHING",
                (sid, about, str(Evidence.TOLD), self.node),
            )
        return cur.rowcount == 1

    def forget_evidence(self, sid: str) -> None:
        """A submission sent again from the start (retry) begins without old evidence."""
        with self._tx() as db:
            db.execute("DELETE FROM evidence WHERE submission_id = %s", (sid,))
