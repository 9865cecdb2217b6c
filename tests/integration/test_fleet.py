"""A daemon whose config names a PostgreSQL journal (issue 13, phase 2): it delivers through
it, under a claim; a submission another node holds is not its to touch; a node whose lease
was taken over cannot start a manifest session."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest
import yaml

from hotfolder.cli import main as cli
from hotfolder.clock import SystemClock
from hotfolder.config import settings as config
from hotfolder.model import FileIdentity, ManifestFormat, State, Submission, SubmissionFile
from hotfolder.service.daemon import Daemon
from hotfolder.service.fleet import Fleet, FleetEvidence
from hotfolder.service.sd_notify import Notifier
from hotfolder.state.journal import Journal
from hotfolder.state.pg_journal import Claim, LeaseLost, PgJournal
from hotfolder.state.port import JournalPort
from hotfolder.transfer.targets.ascp import AscpSettings, AscpTarget
from hotfolder.transfer.targets.base import Session
from tests import manifests
from tests.helpers import running, wait_until, write_config
from tests.pg import PgServer

NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture
def db_url(pg_server: PgServer) -> str:
    return pg_server.app_url(pg_server.create_database())


def fleet_config(tmp_path: Path, url: str, password: str, node: str) -> config.Config:
    path = write_config(tmp_path, mode="poll", poll_interval=0.2)
    secret = tmp_path / "journal.pass"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    data = yaml.safe_load(path.read_text())
    data["journal"] = {"url": url, "node": node, "password_file": str(secret)}
    path.write_text(yaml.safe_dump(data))
    return config.load(path)


def journal(pg_server: PgServer, url: str, node: str, **kw: object) -> PgJournal:
    return PgJournal(url, node=node, password=pg_server.password, **kw)  # type: ignore[arg-type]


@pytest.fixture
def node_b(pg_server: PgServer, db_url: str) -> Iterator[PgJournal]:
    j = journal(pg_server, db_url, "b", register=False)  # not a live node unless a test says
    yield j
    j.close()


def sub(sid: str = "m-1") -> Submission:
    media = (
        SubmissionFile(PurePosixPath("a.mov"), PurePosixPath("a.mov"), FileIdentity(9, 1, 1, 5, 7)),
    )
    manifest = SubmissionFile(
        PurePosixPath("m.xml"), PurePosixPath("m.xml"), FileIdentity(3, 2, 2, 6, 7)
    )
    return Submission(sid, "w", manifest, media, ManifestFormat.OOYALA_MRSS)


def test_a_daemon_with_a_journal_url_delivers_through_postgresql_under_its_claim(
    tmp_path: Path, pg_server: PgServer, db_url: str, node_b: PgJournal
) -> None:
    cfg = fleet_config(tmp_path, db_url, pg_server.password, "a")
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        assert isinstance(daemon.journal, PgJournal)
        (drop / "a.mov").write_bytes(b"v" * 1000)
        (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
        done = wait_until(
            lambda: node_b.rows(frozenset({State.COMPLETE})), what="complete in PostgreSQL"
        )
        wait_until(lambda: not (drop / "m.xml").exists(), what="archived")
    (row,) = done
    assert node_b.delivered_by(row.id) == "a"  # a fenced COMPLETE: only under a claim
    assert node_b.owner_of(row.id)[0] is None  # the claim was given back
    assert (tmp_path / "ingest" / "m.xml").exists()
    assert len(list((tmp_path / "archive").rglob("m.xml"))) == 1
    assert not (tmp_path / "state" / "journal.sqlite").exists()  # nothing kept beside it
    assert "a" in {n.name for n in node_b.nodes()}


def test_a_submission_another_node_holds_is_left_to_it(
    pg_server: PgServer, db_url: str, node_b: PgJournal
) -> None:
    node_a = journal(pg_server, db_url, "a")
    try:
        node_a.record_ready(sub(), NOW)
        assert node_b.claim("m-1", NOW) is not None
        fleet = Fleet(node_a, SystemClock())
        assert fleet.take("m-1") is None
        assert fleet.held() == ()
        assert node_b.owner_of("m-1")[0] == "b"
    finally:
        node_a.close()


def test_a_node_taken_over_cannot_start_the_manifest_session(
    pg_server: PgServer, db_url: str, node_b: PgJournal
) -> None:
    node_a = journal(pg_server, db_url, "a", lease=timedelta(seconds=1))
    try:
        node_a.record_ready(sub(), NOW)
        fleet = Fleet(node_a, SystemClock())
        claimed = fleet.take("m-1")
        assert claimed is not None
        stop = fleet.stop_event("m-1")  # what a's delivery watches, as its cancel
        for step in (State.QUEUED, State.SENDING_MEDIA, State.MEDIA_SENT):
            claimed.transition("m-1", step, NOW)
        # a's lease runs out (it stopped beating); b takes the submission over
        wait_until(lambda: node_b.claim("m-1", NOW), what="b takes over")
        with pytest.raises(LeaseLost):  # the database's fence, before a's heartbeat knows
            claimed.transition("m-1", State.SENDING_MANIFEST, NOW)
        assert not stop.is_set()
        fleet.beat()
        assert fleet.held() == ()  # the heartbeat saw the claim lost
        assert stop.is_set()  # and a's transfer stops: no two nodes writing one file
        fleet.give_back("m-1")
        assert node_b.state_of("m-1") is State.MEDIA_SENT
        assert node_b.owner_of("m-1")[0] == "b"  # a's give-back did not free b's claim
    finally:
        node_a.close()


def test_the_heartbeat_renews_a_held_lease(
    pg_server: PgServer, db_url: str, node_b: PgJournal
) -> None:
    node_a = journal(pg_server, db_url, "a", lease=timedelta(seconds=2))
    try:
        node_a.record_ready(sub(), NOW)
        fleet = Fleet(node_a, SystemClock())
        assert fleet.take("m-1") is not None
        (first,) = fleet.held()

        def renewed() -> bool:
            fleet.beat()
            return fleet.held()[0].lease_until > first.lease_until

        wait_until(renewed, what="a renewed lease")
        assert node_b.claim("m-1", NOW) is None  # still a's
    finally:
        node_a.close()


def test_every_journal_answers_the_port(tmp_path: Path, node_b: PgJournal) -> None:
    node_b.record_ready(sub(), NOW)
    fleet = Fleet(node_b, SystemClock())
    claimed = fleet.take("m-1")
    assert claimed is not None
    sqlite = Journal(tmp_path / "j.sqlite")
    sqlite.record_ready(sub(), NOW)
    ports: list[JournalPort] = [sqlite, node_b, claimed]  # mypy checks
    try:
        assert [p.state_of("m-1") for p in ports] == [State.READY] * 3
    finally:
        sqlite.close()


def test_hotfolder_nodes_lists_the_fleet_without_beating_for_it(
    tmp_path: Path,
    pg_server: PgServer,
    db_url: str,
    node_b: PgJournal,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node_b.register("x")
    fleet_config(tmp_path, db_url, pg_server.password, "ws-a")
    before = {n.name: n.heartbeat_at for n in node_b.nodes()}
    assert cli.main(["nodes", "--config", str(tmp_path / "hotfolder.yaml")]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NODE", "LAST", "HEARTBEAT"]
    assert [line.split()[0] for line in lines[1:]] == ["b"]
    assert "alive" in lines[1]
    assert {n.name: n.heartbeat_at for n in node_b.nodes()} == before  # reading is no beat


def test_hotfolder_nodes_without_a_fleet_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["nodes", "--config", str(write_config(tmp_path))]) == cli.EXIT_CONFIG
    assert "no journal: block" in capsys.readouterr().err


def test_a_node_started_while_the_database_is_down_waits_for_it_then_delivers(
    tmp_path: Path, pg_own_server: PgServer
) -> None:
    url = pg_own_server.app_url(pg_own_server.create_database())
    cfg = fleet_config(tmp_path, url, pg_own_server.password, "a")
    pg_own_server.stop()
    said: list[str] = []
    notifier = Notifier(send=said.append, environ={"NOTIFY_SOCKET": "@test"})
    built: list[Daemon] = []
    ready = threading.Event()

    def main() -> None:
        built.append(Daemon(cfg, notifier=notifier))
        built[0].run(on_ready=ready.set)

    thread = threading.Thread(target=main, name="daemon-waiting-for-its-journal")
    thread.start()
    try:
        wait_until(lambda: any("waiting for the journal" in m for m in said), what="waiting")
        assert any("EXTEND_TIMEOUT_USEC=" in m for m in said)  # systemd keeps waiting too
        assert not ready.is_set()
        pg_own_server.start()
        assert ready.wait(60), "the node did not start once its database was back"
        drop = tmp_path / "drop"
        (drop / "a.mov").write_bytes(b"v" * 100)
        (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
        wait_until((tmp_path / "ingest" / "m.xml").exists, what="delivered")
    finally:
        if built:
            built[0].stop()
        thread.join(30)
    assert not thread.is_alive()


def _ascp(tmp_path: Path, node: str, shared: FleetEvidence) -> AscpTarget:
    options = {"host": "ingest.example.com", "user": "u", "destination": "/in"}
    settings = AscpSettings.from_options("aspera", options, tmp_path / node / "ascp")
    return AscpTarget(settings, shared=shared)


def test_a_manifest_session_is_decided_on_any_node_by_the_evidence_its_sender_shared(
    tmp_path: Path, pg_server: PgServer, db_url: str, node_b: PgJournal
) -> None:
    node_a = journal(pg_server, db_url, "a", lease=timedelta(seconds=3))
    try:
        node_a.record_ready(sub(), NOW)
        fleet_a, fleet_b = Fleet(node_a, SystemClock()), Fleet(node_b, SystemClock())
        sender, taker = (
            _ascp(tmp_path, "a", FleetEvidence(fleet_a)),
            _ascp(tmp_path, "b", FleetEvidence(fleet_b)),
        )
        session = Session("m-1", "manifest", ((tmp_path / "m.xml", PurePosixPath("m.xml")),))
        assert taker.delivered(session) is False  # never attempted: b may send it
        assert fleet_a.take("m-1") is not None
        FleetEvidence(fleet_a).mark_attempt("m-1", "manifest")  # a's gate opened
        assert taker.delivered(session) is None  # may have left: held, never sent twice
        receipts = sender.receipt_dir(session)
        receipts.mkdir(parents=True)
        (receipts / "aspera-transfer-1-manifest.txt").write_text("/in/m.xml\n")
        assert taker.delivered(session) is None  # a died before it shared its receipt
        assert sender.delivered(session) is True  # a, restarted, finds it and shares it
        assert taker.delivered(session) is True  # b finds it delivered: complete, not held
        # a stops beating; once its lease ran out b takes over, and a's gate stays shut
        wait_until(lambda: fleet_b.take("m-1"), what="b takes over")
        with pytest.raises(LeaseLost):  # the database's fence, though a still thinks it holds
            FleetEvidence(fleet_a).mark_attempt("m-1", "manifest")
    finally:
        node_a.close()


def test_an_operator_retries_and_holds_in_the_fleet_s_journal(
    tmp_path: Path, pg_server: PgServer, db_url: str, node_b: PgJournal
) -> None:
    node_b.record_ready(sub(), NOW)
    claim = node_b.claim("m-1", NOW)
    assert claim is not None
    node_b.mark_attempt(claim, "manifest")  # its gate had opened: why it was held
    node_b.transition("m-1", State.HELD, NOW, error_code="manifest-unconfirmed")
    fleet_config(tmp_path, db_url, pg_server.password, "ws-a")
    given = ["--config", str(tmp_path / "hotfolder.yaml")]
    assert cli.main(["retry", "m-1", *given]) == cli.EXIT_OK
    assert node_b.state_of("m-1") is State.READY  # every node picks it up from here
    assert not node_b.attempted("m-1", "manifest")  # the old marker decides nothing now
    assert cli.main(["hold", "m-1", *given]) == cli.EXIT_OK
    assert node_b.state_of("m-1") is State.HELD
    assert not (tmp_path / "state" / "journal.sqlite").exists()  # no second journal made


def test_retrying_a_held_version_of_a_manifest_while_another_is_on_its_way_is_refused(
    tmp_path: Path,
    pg_server: PgServer,
    db_url: str,
    node_b: PgJournal,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node_b.record_ready(sub("m-1"), NOW)
    node_b.transition("m-1", State.HELD, NOW, error_code="manifest-unconfirmed")
    # The editor re-saved the manifest meanwhile: its files are still coming, then it goes.
    node_b.record_pending("m-2", "w", PurePosixPath("m.xml"), NOW, {})
    fleet_config(tmp_path, db_url, pg_server.password, "ws-a")
    given = ["--config", str(tmp_path / "hotfolder.yaml")]
    assert cli.main(["retry", "m-1", *given]) == cli.EXIT_FAILURE
    assert "m-2, is pending" in capsys.readouterr().err  # what to wait for, named
    node_b.record_ready(sub("m-2"), NOW)
    assert cli.main(["retry", "m-1", *given]) == cli.EXIT_FAILURE
    assert "m-2, is ready" in capsys.readouterr().err
    assert node_b.state_of("m-1") is State.HELD


def test_a_node_never_claims_twice_what_it_holds_and_keeps_its_newest_claim(
    pg_server: PgServer, db_url: str, node_b: PgJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_a = journal(pg_server, db_url, "a")
    try:
        node_a.record_ready(sub(), NOW)
        fleet = Fleet(node_a, SystemClock())
        assert fleet.take("m-1") is not None
        fence = node_b.owner_of("m-1")[1]
        assert fleet.take("m-1") is None  # the dispatcher and a takeover asking at once
        assert node_b.owner_of("m-1")[1] == fence  # the step under way keeps its fence
        renew = node_a.heartbeat

        def given_back_and_taken_again_meanwhile(claims: tuple[Claim, ...]) -> tuple[Claim, ...]:
            renewed = renew(claims)
            fleet.give_back("m-1")
            assert fleet.take("m-1") is not None
            return renewed

        monkeypatch.setattr(node_a, "heartbeat", given_back_and_taken_again_meanwhile)
        fleet.beat()
        held = fleet.claim_of("m-1")
        assert held is not None
        assert held.fence == node_b.owner_of("m-1")[1] == fence + 1  # not the older one
    finally:
        node_a.close()
