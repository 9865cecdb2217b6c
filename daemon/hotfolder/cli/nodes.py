"""`hotfolder nodes`: the workstations of a fleet (issue 13) with their last heartbeat, as the
shared journal's clock measures it. Reading does not count as a node's heartbeat."""

from __future__ import annotations

import sys
from datetime import timedelta

from hotfolder.config.settings import Config
from hotfolder.state.journal import JournalError
from hotfolder.state.pg_journal import FleetSettings, NodeRow, PgJournal

#: A node silent this long has missed several heartbeats (a third of the lease each).
SILENT_AFTER = timedelta(seconds=60)


def table(nodes: list[NodeRow]) -> str:
    if not nodes:
        return "no node has started on this journal yet\n"
    lines = [f"{'NODE':<24} {'LAST HEARTBEAT':<26} {'AGO':>8}  {'VERSION':<10} STATE"]
    for n in nodes:
        ago = int(n.heartbeat_age.total_seconds())
        state = "silent" if n.heartbeat_age > SILENT_AFTER else "alive"
        beat = n.heartbeat_at.isoformat(timespec="seconds")
        lines.append(f"{n.name:<24} {beat:<26} {ago:>7}s  {n.version or '-':<10} {state}")
    return "\n".join(lines) + "\n"


def show(cfg: Config) -> bool:
    """Print the fleet's nodes; False (said on stderr) when there is no fleet journal or it
    cannot be read."""
    if cfg.journal is None:
        print(
            "hotfolder nodes: the config has no journal: block; this is a single workstation",
            file=sys.stderr,
        )
        return False
    try:
        journal = PgJournal.open(FleetSettings.of(cfg.journal), register=False)
    except JournalError as err:
        print(f"hotfolder nodes: {err}\n  hint: {err.hint}", file=sys.stderr)
        return False
    try:
        sys.stdout.write(table(journal.nodes()))
    except JournalError as err:
        print(f"hotfolder nodes: {err}\n  hint: {err.hint}", file=sys.stderr)
        return False
    finally:
        journal.close()
    return True
