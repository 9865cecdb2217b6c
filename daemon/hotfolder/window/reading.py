"""What the window reads a journal through: `state.reader.JournalReader` (a single workstation's
SQLite file) or `state.pg_reader.PgJournalReader` (a fleet's PostgreSQL, every node's rows,
each with its node). Both are read-only and never get in the daemon's way."""

from __future__ import annotations

from typing import Protocol

from hotfolder.model import State
from hotfolder.state.reader import PAGE, Cursor, Filters, Page
from hotfolder.state.rows import Row


class Reader(Protocol):
    def get(self, sid: str) -> Row | None: ...

    def history(self, sid: str) -> list[tuple[str, str, str]]: ...

    def page(self, filters: Filters, after: Cursor | None = None, limit: int = PAGE) -> Page: ...

    def in_states(self, states: frozenset[State], limit: int) -> list[Row]: ...

    def counts(self) -> dict[str, dict[State, int]]:
        """watch -> state -> how many, in the whole journal (every node's, in a fleet)."""
        ...

    def oldest(self, state: State) -> dict[str, str]: ...

    def owners(self) -> list[str]: ...

    def close(self) -> None: ...
