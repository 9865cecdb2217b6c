"""Operators see the whole fleet (issue 13, item 5): `hotfolder status` and the web window read
the fleet's PostgreSQL journal when the config has a `journal:` block, and show every node's
submissions with the node that holds or delivered each; `run --once` and /metrics count the
node's own work. Rows are written by two nodes (a and b) through PgJournal, as their daemons
would; the reader is a third workstation (c) that registers as no node."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hotfolder.cli import common, web
from hotfolder.config import settings as config
from hotfolder.metrics import Counters
from hotfolder.model import FileIdentity, ManifestFormat, State, Submission, SubmissionFile
from hotfolder.state.pg_journal import PgJournal
from hotfolder.state.pg_reader import PgJournalReader
from hotfolder.state.reader import Cursor, Filters
from hotfolder.window.app import Actions, Outcome, WindowSettings, create_app
from tests.helpers import running, write_config
from tests.pg import PgServer

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def sub(sid: str, manifest: str) -> Submission:
    media = (
        SubmissionFile(PurePosixPath("a.mov"), PurePosixPath("a.mov"), FileIdentity(9, 1, 1, 5)),
    )
    xml = SubmissionFile(PurePosixPath(manifest), PurePosixPath(manifest), FileIdentity(3, 2, 2, 6))
    return Submission(sid, "w", xml, media, ManifestFormat.OOYALA_MRSS)


def node_config(tmp: Path, url: str, password: str, node: str, **extra: object) -> Path:
    """A workstation's config on the fleet journal (its password in a 0600 file)."""
    tmp.mkdir(exist_ok=True)
    path = write_config(tmp, mode="poll", poll_interval=0.2)
    secret = tmp / "journal.pass"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    data = yaml.safe_load(path.read_text())
    data["journal"] = {"url": url, "node": node, "password_file": str(secret)}
    data.update(extra)
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Fleet:
    """Two nodes' work in one journal: a delivered m-aaa1 and put m-aaa2 on hold; b holds
    m-bbb1 (a live claim) and failed m-bbb2; nobody has claimed m-ccc1 yet."""

    url: str
    password: str
    a: PgJournal
    b: PgJournal


@pytest.fixture
def fleet(pg_server: PgServer) -> Iterator[Fleet]:
    url = pg_server.app_url(pg_server.create_database())
    a = PgJournal(url, node="a", password=pg_server.password, register=False)
    b = PgJournal(url, node="b", password=pg_server.password, register=False)
    try:
        at = NOW
        for node, sid in ((a, "m-aaa1"), (a, "m-aaa2"), (b, "m-bbb1"), (b, "m-bbb2")):
            at += timedelta(seconds=1)
            node.record_ready(sub(sid, f"{sid}.xml"), at)
        a.record_ready(sub("m-ccc1", "m-ccc1.xml"), at + timedelta(seconds=1))

        delivered = a.claim("m-aaa1", NOW)
        assert delivered is not None
        for step in (State.QUEUED, State.SENDING_MEDIA, State.MEDIA_SENT):
            a.transition_fenced(delivered, step, NOW)
        a.start_manifest_session(delivered, NOW)
        a.transition_fenced(delivered, State.COMPLETE, NOW)
        a.release(delivered)

        held = a.claim("m-aaa2", NOW)
        assert held is not None
        a.transition_fenced(held, State.HELD, NOW, note="held by a")
        a.release(held)

        sending = b.claim("m-bbb1", NOW)  # kept: b holds it (default lease, 30 s)
        assert sending is not None
        b.transition_fenced(sending, State.QUEUED, NOW)

        failed = b.claim("m-bbb2", NOW)
        assert failed is not None
        b.transition_fenced(failed, State.FAILED, NOW, error_code="x", error_message="bad")
        b.release(failed)
        yield Fleet(url, pg_server.password, a, b)
    finally:
        a.close()
        b.close()


def hotfolder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotfolder", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


# -- the journal's rows --------------------------------------------------------------------------


def test_each_row_names_the_node_that_holds_or_delivered_it(fleet: Fleet) -> None:
    nodes = {r.id: r.node for r in fleet.a.rows()}
    assert nodes == {
        "m-aaa1": "a",  # delivered by a, claim given back
        "m-aaa2": None,  # held, nobody holds the claim
        "m-bbb1": "b",  # b's live claim
        "m-bbb2": None,
        "m-ccc1": None,
    }
    assert fleet.a.get("m-bbb1") is not None
    assert fleet.a.get("m-bbb1").node == "b"  # type: ignore[union-attr]


def test_a_claim_whose_lease_ran_out_names_no_node(pg_server: PgServer) -> None:
    url = pg_server.app_url(pg_server.create_database())
    a = PgJournal(url, node="a", password=pg_server.password, register=False, lease=timedelta(0))
    try:
        a.record_ready(sub("m-1", "m-1.xml"), NOW)
        assert a.claim("m-1", NOW) is not None  # a lease of 0 s: out at once (database clock)
        assert a.owner_of("m-1")[0] == "a"
        row = a.get("m-1")
        assert row is not None
        assert row.node is None
    finally:
        a.close()


def test_run_once_counts_only_the_nodes_own_failures(fleet: Fleet, tmp_path: Path) -> None:
    since = NOW - timedelta(minutes=1)
    assert fleet.a.ended_badly_since(since) == ["m-aaa2", "m-bbb2"]
    assert fleet.a.ended_badly_since(since, node="a") == ["m-aaa2"]
    for node, own in (("a", ["m-aaa2"]), ("b", ["m-bbb2"])):
        cfg = config.load(node_config(tmp_path / node, fleet.url, fleet.password, node))
        assert common.ended_badly_since(cfg, since) == own
    assert not (tmp_path / "a" / "state" / "journal.sqlite").exists()


# -- hotfolder status ----------------------------------------------------------------------------


def test_status_lists_every_nodes_submissions_with_its_node(fleet: Fleet, tmp_path: Path) -> None:
    path = node_config(tmp_path, fleet.url, fleet.password, "c")
    out = hotfolder("status", "--config", str(path))
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.splitlines()
    assert header.split()[:4] == ["ID", "WATCH", "NODE", "STATE"]
    shown = {line.split()[0]: line.split()[1:4] for line in lines}
    assert shown == {
        "m-aaa1": ["w", "a", "complete"],
        "m-aaa2": ["w", "-", "held"],
        "m-bbb1": ["w", "b", "queued"],
        "m-bbb2": ["w", "-", "failed"],
        "m-ccc1": ["w", "-", "ready"],
    }
    as_json = {
        r["id"]: r["node"]
        for r in json.loads(hotfolder("status", "--json", "--config", str(path)).stdout)
    }
    assert as_json == {"m-aaa1": "a", "m-aaa2": None, "m-bbb1": "b", "m-bbb2": None, "m-ccc1": None}
    # An id by its prefix (every row is looked at: SQLite's LIMIT -1 is PostgreSQL's NULL).
    one = hotfolder("status", "m-bbb1"[:5], "--config", str(path))
    assert one.returncode == 2, one.stderr  # m-bbb1 and m-bbb2
    one = hotfolder("status", "m-aaa1"[:6], "--config", str(path))
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[1:3] == ["  manifest  m-aaa1.xml", "  node      a"]
    assert one.stdout.startswith("m-aaa1  (w, complete,")
    # The reader is no node: no heartbeat, no row in `nodes`, nothing kept beside it.
    assert "c" not in {n.name for n in fleet.a.nodes()}
    assert not (tmp_path / "state").exists()


def test_a_single_workstations_status_never_loads_the_postgresql_driver(tmp_path: Path) -> None:
    """Start-up and `status` import only what the config uses (bench.watch_latency's READY and
    RSS budget); a fleet's config is what loads psycopg."""
    (tmp_path / "single").mkdir()
    single = write_config(tmp_path / "single")
    fleet = node_config(tmp_path / "fleet", "postgresql://hotfolder@127.0.0.1:1/none", "pw", "c")
    probe = (
        "import sys\n"
        "from hotfolder.cli.main import main\n"
        "main(['status', '--config', sys.argv[1]])\n"
        "print('psycopg loaded' if 'psycopg' in sys.modules else 'psycopg not loaded')\n"
    )
    alone = subprocess.run(
        [sys.executable, "-c", probe, str(single)], capture_output=True, text=True, check=False
    )
    assert alone.stdout.splitlines()[-1] == "psycopg not loaded", alone.stderr
    together = subprocess.run(
        [sys.executable, "-c", probe, str(fleet)], capture_output=True, text=True, check=False
    )
    assert together.stdout.splitlines()[-1] == "psycopg loaded", together.stderr
    assert "cannot be reached" in together.stderr  # said, with a hint, not a traceback
    assert "Traceback" not in together.stderr


# -- the web window ------------------------------------------------------------------------------


def node_cells(page: str) -> dict[str, str]:
    """submission id -> what its row's Node cell says, from the page's tables."""
    return dict(
        re.findall(r'<small class="id">([^<]+)</small>.*?<td class="node">([^<]*)</td>', page, re.S)
    )


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no {name} {labels}")


def no_action(sid: str, who: str) -> Outcome:
    raise AssertionError(f"no action expected ({sid}, {who})")


@pytest.fixture
def reader(fleet: Fleet) -> Iterator[PgJournalReader]:
    r = PgJournalReader(fleet.url, node="a", password=fleet.password)
    yield r
    r.close()


def test_the_page_shows_every_nodes_submissions_and_metrics_count_its_own(
    fleet: Fleet, reader: PgJournalReader
) -> None:
    settings = WindowSettings(
        watches=["w"],
        version="9",
        tz=UTC,
        now=lambda: NOW,
        fleet=True,
        own_counts=lambda: reader.counts(node="a"),
    )
    app = create_app(settings, reader, Counters(), Actions(no_action, no_action), None)
    client = app.test_client()
    overview = client.get("/").get_data(as_text=True)
    assert '<th scope="col">Node</th>' in overview
    expected = {"m-aaa1": "a", "m-aaa2": "-", "m-bbb1": "b", "m-bbb2": "-", "m-ccc1": "-"}
    assert node_cells(overview) == expected
    assert node_cells(client.get("/submissions").get_data(as_text=True)) == expected
    live = client.get("/api/overview").get_json()
    assert node_cells(live["html"]) == expected
    one = client.get("/api/submissions/m-bbb1").get_json()
    assert (one["state"], one["node"]) == ("queued", "b")
    assert '<dd id="node">b</dd>' in one["html"]
    # The page counts the fleet; /metrics counts a's own work (what it holds or delivered).
    assert "queued" in overview
    scraped = client.get("/metrics").get_data(as_text=True)
    assert metric(scraped, "hotfolder_submissions", watch="w", state="complete") == 1
    assert metric(scraped, "hotfolder_submissions", watch="w", state="queued") == 0
    assert metric(scraped, "hotfolder_submissions", watch="w", state="ready") == 0


def test_the_fleet_reader_pages_and_filters_as_the_sqlite_one(
    fleet: Fleet, reader: PgJournalReader
) -> None:
    seen: list[str] = []
    after: Cursor | None = None
    while True:
        page = reader.page(Filters(), after, limit=2)
        seen += [r.id for r in page.rows]
        if page.next is None:
            break
        after = page.next
    assert seen == ["m-ccc1", "m-bbb2", "m-bbb1", "m-aaa2", "m-aaa1"]  # newest first, once each
    assert [r.id for r in reader.page(Filters(text="BBB")).rows] == ["m-bbb2", "m-bbb1"]
    assert [r.id for r in reader.page(Filters(text="a.mov")).rows] == seen  # a file's name
    assert [r.id for r in reader.page(Filters(text="%")).rows] == []  # a wildcard is a character
    assert [r.id for r in reader.page(Filters(state=State.HELD)).rows] == ["m-aaa2"]
    assert [r.id for r in reader.page(Filters(watch="other")).rows] == []
    assert [r.id for r in reader.in_states(frozenset({State.HELD, State.FAILED}), 5)] == [
        "m-bbb2",
        "m-aaa2",
    ]
    assert reader.counts() == {
        "w": {State.COMPLETE: 1, State.HELD: 1, State.QUEUED: 1, State.FAILED: 1, State.READY: 1}
    }
    assert reader.counts(node="b") == {"w": {State.QUEUED: 1}}
    assert reader.oldest(State.READY) == {"w": (NOW + timedelta(seconds=5)).isoformat()}
    history = reader.history("m-aaa2")
    assert [state for _, state, _ in history] == ["ready", "held"]


def test_a_fleet_daemons_window_shows_the_other_nodes_work(fleet: Fleet, tmp_path: Path) -> None:
    path = node_config(tmp_path, fleet.url, fleet.password, "a", http={"listen": "127.0.0.1:0"})
    cfg = config.load(path)
    with running(cfg) as daemon:
        window = web.start(cfg, daemon)
        assert window is not None
        try:
            host, port = window.addresses[0]
            with urllib.request.urlopen(f"http://{host}:{port}/submissions", timeout=10) as got:
                page = got.read().decode()
        finally:
            window.stop()
    assert node_cells(page)["m-bbb1"] == "b"
    assert node_cells(page)["m-aaa1"] == "a"
