"""A fleet's journal in `hotfolder status` and on the page (issue 13): a NODE column, a node line
and a `node` key only when the journal is a fleet's; a single workstation's output unchanged."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from hotfolder.cli import statusview
from hotfolder.metrics import Counters
from hotfolder.model import State
from hotfolder.state.reader import Cursor, Filters, Page
from hotfolder.state.rows import Row
from hotfolder.window.app import Actions, Outcome, WindowSettings, create_app

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def row(sid: str, state: State, node: str | None) -> Row:
    return Row(
        id=sid,
        watch="w",
        manifest=f"{sid}.xml",
        format="ooyala-mrss",
        state=state,
        files=[{"relpath": "a.mov", "size": 9, "role": "media"}],
        bytes_total=9,
        bytes_done=0,
        attempts=0,
        error_code=None,
        error_message=None,
        detail={},
        postprocessed=False,
        created_at=NOW.isoformat(),
        updated_at=NOW.isoformat(),
        node=node,
    )


ROWS = [row("m-1", State.COMPLETE, "ingest-ws-2"), row("m-2", State.READY, None)]


# -- hotfolder status ----------------------------------------------------------------------------


def test_a_fleets_table_has_a_node_column_after_the_watch() -> None:
    header, first, second = statusview.table(ROWS, NOW, {}, "db", fleet=True).splitlines()
    assert header.split() == ["ID", "WATCH", "NODE", "STATE", *statusview.COLUMNS[3:]]
    assert first.split()[:4] == ["m-1", "w", "ingest-ws-2", "complete"]
    assert second.split()[:4] == ["m-2", "w", "-", "ready"]
    # The columns line up: each row's state starts where the header's STATE does.
    assert first.index("complete") == header.index("STATE") == second.index("ready")


def test_a_single_workstations_table_names_no_node() -> None:
    header, first, _ = statusview.table(ROWS, NOW, {}, "db").splitlines()
    assert header.split() == list(statusview.COLUMNS)
    assert first.split()[:3] == ["m-1", "w", "complete"]
    assert "ingest-ws-2" not in first


def test_the_detail_and_json_name_the_node_only_in_a_fleet() -> None:
    fleet = statusview.detail(ROWS[0], NOW, None, [], fleet=True).splitlines()
    alone = statusview.detail(ROWS[0], NOW, None, []).splitlines()
    assert fleet[2] == "  node      ingest-ws-2"
    assert fleet[:2] + fleet[3:] == alone
    waiting = statusview.detail(ROWS[1], NOW, None, [], fleet=True).splitlines()
    assert waiting[2] == "  node      none (nobody holds it)"
    assert statusview.json_row(ROWS[0], None, fleet=True)["node"] == "ingest-ws-2"
    assert statusview.json_row(ROWS[1], None, fleet=True)["node"] is None
    assert "node" not in statusview.json_row(ROWS[0], None)


# -- the web window ------------------------------------------------------------------------------


class Rows:
    """A reader over fixed rows: the window's Reader, without a journal."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def get(self, sid: str) -> Row | None:
        return next((r for r in self.rows if r.id == sid), None)

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        return []

    def page(self, filters: Filters, after: Cursor | None = None, limit: int = 50) -> Page:
        return Page(self.rows, None)

    def in_states(self, states: frozenset[State], limit: int) -> list[Row]:
        return [r for r in self.rows if r.state in states]

    def counts(self) -> dict[str, dict[State, int]]:
        return {"w": {State.COMPLETE: 1, State.READY: 1}}

    def oldest(self, state: State) -> dict[str, str]:
        return {}

    def owners(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def no_action(sid: str, who: str) -> Outcome:
    raise AssertionError(f"no action expected ({sid}, {who})")


def client(fleet: bool, **settings: object) -> FlaskClient:
    base = WindowSettings(watches=["w"], version="9", tz=UTC, now=lambda: NOW, fleet=fleet)
    app = create_app(
        dataclasses.replace(base, **settings),  # type: ignore[arg-type]
        Rows(ROWS),
        Counters(),
        Actions(no_action, no_action),
        None,
    )
    return app.test_client()


def node_cells(page: str) -> dict[str, str]:
    return dict(
        re.findall(r'<small class="id">([^<]+)</small>.*?<td class="node">([^<]*)</td>', page, re.S)
    )


def test_a_fleets_page_has_a_node_column_and_label() -> None:
    web = client(fleet=True)
    for path in ("/", "/submissions"):
        page = web.get(path).get_data(as_text=True)
        assert '<th scope="col">Node</th>' in page
        assert node_cells(page) == {"m-1": "ingest-ws-2", "m-2": "-"}
    one = web.get("/api/submissions/m-1").get_json()
    assert one["node"] == "ingest-ws-2"
    assert '<dt>Node</dt><dd id="node">ingest-ws-2</dd>' in one["html"]


def test_a_single_workstations_page_names_no_node() -> None:
    web = client(fleet=False)
    for path in ("/", "/submissions", "/submissions/m-1"):
        page = web.get(path).get_data(as_text=True)
        assert "Node" not in page
        assert "ingest-ws-2" not in page
    assert "node" not in web.get("/api/submissions/m-1").get_json()


def submissions(web: FlaskClient) -> dict[str, float]:
    """state -> hotfolder_submissions for watch w, as /metrics says."""
    text = web.get("/metrics").get_data(as_text=True)
    return {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "hotfolder_submissions" and sample.labels["watch"] == "w"
    }


def test_metrics_count_what_the_wiring_calls_the_nodes_own() -> None:
    own = {"w": {State.COMPLETE: 7}}
    counted = submissions(client(fleet=True, own_counts=lambda: own))
    assert (counted["complete"], counted["ready"]) == (7, 0)
    whole = submissions(client(fleet=False))
    assert (whole["complete"], whole["ready"]) == (1, 1)
