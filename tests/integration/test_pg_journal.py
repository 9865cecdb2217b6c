"""The fleet journal against a real PostgreSQL 15 (tests/pg.py): the SQLite journal's record,
claims that hold exactly once, fencing, leases on the database's clock, and server faults."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import psycopg
import pytest

from hotfolder.model import FileIdentity, ManifestFormat, Problem, State, Submission, SubmissionFile
from hotfolder.state import pg_journal
from hotfolder.state.journal import (
    Journal,
    JournalError,
    JournalHealth,
    JournalTooNew,
    StaleTransition,
)
from hotfolder.state.pg_journal import (
    Evidence,
    FleetSettings,
    JournalUnavailable,
    LeaseLost,
    NodeNameInUse,
    PgJournal,
    Wakeups,
)
from tests.helpers import wait_until
from tests.pg import PgServer, alive, leftovers, pg_cluster

NOW = datetime(2026, 11, 23, tzinfo=UTC)
READY = frozenset({State.READY})
DELIVERY = (State.QUEUED, State.SENDING_MEDIA, State.MEDIA_SENT)


def sub(sid: str = "m-1", size: int = 10, manifest: str = "m.xml") -> Submission:
    media = (
        SubmissionFile(
            PurePosixPath("a.mov"), PurePosixPath("a.mov"), FileIdentity(size, 1, 1, 5, 7)
        ),
    )
    pinned = SubmissionFile(
        PurePosixPath(manifest), PurePosixPath(manifest), FileIdentity(3, 2, 2, 6, 7)
    )
    return Submission(sid, "w", pinned, media, ManifestFormat.OOYALA_MRSS)


def delivered(j: Journal | PgJournal, sid: str) -> None:
    """Take a ready submission to complete, unfenced (one node's steps)."""
    for state in (*DELIVERY, State.SENDING_MANIFEST, State.COMPLETE):
        j.transition(sid, state, NOW)


@pytest.fixture
def db_url(pg_server: PgServer) -> str:
    return pg_server.app_url(pg_server.create_database())


@pytest.fixture
def node_a(pg_server: PgServer, db_url: str) -> Iterator[PgJournal]:
    j = PgJournal(db_url, node="a", password=pg_server.password)
    yield j
    j.close()


@pytest.fixture
def node_b(pg_server: PgServer, db_url: str, node_a: PgJournal) -> Iterator[PgJournal]:
    j = PgJournal(db_url, node="b", password=pg_server.password)
    yield j
    j.close()


def test_the_test_server_is_stopped_by_pid_and_removed() -> None:
    others = set(leftovers())  # the session's shared server may be running: not this test's
    with pg_cluster() as server:
        pid = server.pid
        root = server.root
        assert pid is not None
        assert alive(pid)
    assert not alive(pid)
    assert set(leftovers()) - others == set()
    assert not root.exists()


# -- the same record as the SQLite journal ----------------------------------------------------


def _drive(j: Journal | PgJournal) -> dict[str, Any]:
    """Every write the daemon makes, in an order it could make them; what reads then say."""
    later = NOW + timedelta(minutes=1)
    j.record_pending("p-1", "w", PurePosixPath("p.xml"), NOW, {"missing": ["a"]})
    j.record_pending("p-1", "w", PurePosixPath("p.xml"), NOW, {"missing": []})
    j.record_pending("p-2", "w", PurePosixPath("q.xml"), NOW, {})
    j.forget_pending("p-2")
    j.record_ready(sub("m-1"), NOW, {"owner": "ed"})
    for state in (*DELIVERY, State.SENDING_MANIFEST, State.COMPLETE):
        j.transition("m-1", state, NOW, note=f"to {state}")
    j.progress("m-1", 7)
    j.mark_postprocessed("m-1", later, "archived")
    j.record_verify("m-1", "found", {"a.mov": "asset-1"}, error=None)
    j.mark_manifest_removed("m-1")
    j.record_ready(sub("m-1~2"), later)
    j.transition("m-1~2", State.QUEUED, later)
    j.record_attempt("m-1~2", later, 1, "ascp-timeout", "timed out")
    problem = Problem("admin-fault", "no space", "free some", "a.mov", None)
    j.transition("m-1~2", State.HELD, later, note="held", problems=(problem,), attempts=3)
    j.record_failed("f-1", "w", PurePosixPath("f.xml"), (problem,), later, owner="ed")
    j.record_ready(sub("g-1"), NOW)
    j.forget("g-1")
    stale = ""
    try:
        j.transition("m-1~2", State.COMPLETE, later)
    except StaleTransition as err:
        stale = str(err)
    ids = ("p-1", "p-2", "m-1", "m-1~2", "f-1", "g-1")
    return {
        "rows": {sid: j.get(sid) for sid in ids},
        "history": {sid: j.history(sid) for sid in ids},
        "counts": j.counts(),
        "rows_held": [r.id for r in j.rows(frozenset({State.HELD}), watch="w")],
        "rows_all": sorted(r.id for r in j.rows()),
        "bad": j.ended_badly_since(NOW + timedelta(seconds=30)),
        "latest": j.latest_generation("m-1"),
        "settled": [j.is_settled(sid) for sid in ids],
        "stale": stale,
    }


def test_it_keeps_the_same_record_as_the_sqlite_journal(tmp_path: Path, node_a: PgJournal) -> None:
    sqlite = Journal(tmp_path / "j.sqlite")
    try:
        expected = _drive(sqlite)
    finally:
        sqlite.close()
    assert _drive(node_a) == expected
    assert expected["stale"]  # the drive did hit a refused move


def test_its_schema_is_versioned_and_a_newer_one_refused(
    pg_server: PgServer, db_url: str, node_a: PgJournal
) -> None:
    with psycopg.connect(db_url, password=pg_server.password, autocommit=True) as db:
        assert db.execute("SELECT version FROM hotfolder_schema").fetchall() == [
            (pg_journal.SCHEMA_VERSION,)
        ]
    again = PgJournal(db_url, node="a2", password=pg_server.password)  # opens, migrates nothing
    again.close()
    with psycopg.connect(db_url, password=pg_server.password, autocommit=True) as db:
        db.execute("UPDATE hotfolder_schema SET version = version + 1")
    with pytest.raises(JournalTooNew):
        PgJournal(db_url, node="a3", password=pg_server.password)


def test_nodes_starting_together_migrate_once(pg_server: PgServer, db_url: str) -> None:
    opened: list[PgJournal] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one(name: str) -> None:
        start.wait()
        try:
            opened.append(PgJournal(db_url, node=name, password=pg_server.password))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in "wxyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for j in opened:
        j.close()
    assert errors == []
    assert len(opened) == 4


# -- claims, leases and fencing ---------------------------------------------------------------


def test_nodes_racing_for_submissions_claim_each_exactly_once(
    pg_server: PgServer, db_url: str
) -> None:
    """Four nodes (one connection each) race over 60 ready submissions, two by id, two by
    taking the next: every submission is claimed, none twice."""
    nodes = [PgJournal(db_url, node=n, password=pg_server.password) for n in "abcd"]
    try:
        for n in range(60):
            nodes[0].record_ready(sub(f"r-{n}", manifest=f"r-{n}.xml"), NOW)
        claims: Counter[str] = Counter()
        lock = threading.Lock()
        start = threading.Barrier(len(nodes))

        def take_all(j: PgJournal, by_id: bool) -> None:
            start.wait()
            for n in range(60):
                got = [j.claim(f"r-{n}", NOW)] if by_id else j.claim_next(READY, NOW)
                with lock:
                    claims.update(c.sid for c in got if c is not None)

        threads = [
            threading.Thread(target=take_all, args=(j, i % 2 == 0)) for i, j in enumerate(nodes)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for j in nodes:
            j.close()
    assert max(claims.values()) == 1, [sid for sid, n in claims.items() if n > 1]
    assert len(claims) == 60


def test_a_live_lease_is_not_claimed_by_another_node(node_a: PgJournal, node_b: PgJournal) -> None:
    node_a.record_ready(sub(), NOW)
    mine = node_a.claim("m-1", NOW)
    assert mine is not None
    assert node_b.claim("m-1", NOW) is None
    assert node_b.claim_next(frozenset({State.READY}), NOW) == []
    again = node_a.claim("m-1", NOW)  # the holder claims its next step: a new fence
    assert again is not None
    assert again.fence > mine.fence


def test_an_expired_lease_is_taken_over_and_the_old_holder_never_starts_the_manifest(
    pg_server: PgServer, db_url: str, node_b: PgJournal
) -> None:
    short = PgJournal(  # a second handle on node a (the fixture registered it)
        db_url, node="a", password=pg_server.password, lease=timedelta(seconds=0.3), register=False
    )
    try:
        short.record_ready(sub(), NOW)
        old = short.claim("m-1", NOW)
        assert old is not None
        for state in DELIVERY:
            short.transition_fenced(old, state, NOW)
        new = wait_until(lambda: node_b.claim("m-1", NOW), what="the lease to run out")
        assert new.fence > old.fence
        assert new.taken_over_from == "a"
        with pytest.raises(LeaseLost):
            short.start_manifest_session(old, NOW)
        with pytest.raises(LeaseLost):
            short.mark_attempt(old, "manifest")
        assert short.heartbeat((old,)) == ()  # the old holder learns it lost the claim
        assert node_b.state_of("m-1") is State.MEDIA_SENT
        assert node_b.evidence("m-1", "manifest", Evidence.ATTEMPT) is None
        node_b.start_manifest_session(new, NOW)
        node_b.mark_attempt(new, "manifest")
        node_b.transition_fenced(new, State.COMPLETE, NOW)
        assert short.evidence("m-1", "manifest", Evidence.ATTEMPT) == ""  # seen by any node
        assert short.delivered_by("m-1") == "b"
        assert any(h[2] == "taken over from a" for h in short.history("m-1"))
    finally:
        short.close()


def test_a_lease_that_ran_out_unclaimed_cannot_start_the_manifest(
    pg_server: PgServer, db_url: str
) -> None:
    j = PgJournal(db_url, node="a", password=pg_server.password, lease=timedelta(seconds=0.2))
    try:
        j.record_ready(sub(), NOW)
        claim = j.claim("m-1", NOW)
        assert claim is not None
        for state in DELIVERY:
            j.transition_fenced(claim, state, NOW)
        wait_until(lambda: _lease_over(db_url, pg_server), what="the lease to run out")
        with pytest.raises(LeaseLost):
            j.start_manifest_session(claim, NOW)
        renewed = j.heartbeat((claim,))  # nobody took it: the same fence may renew
        assert renewed != ()
        j.start_manifest_session(renewed[0], NOW)
        assert j.state_of("m-1") is State.SENDING_MANIFEST
    finally:
        j.close()


def _lease_over(url: str, server: PgServer) -> bool:
    with psycopg.connect(url, password=server.password) as db:
        found = db.execute("SELECT lease_until <= now() FROM submissions").fetchone()
    return bool(found and found[0])


def test_a_node_whose_clock_is_minutes_off_cannot_steal_a_live_lease(
    node_a: PgJournal, node_b: PgJournal
) -> None:
    node_a.record_ready(sub(), NOW)
    held = node_a.claim("m-1", datetime.now(UTC))
    assert held is not None
    skewed = datetime.now(UTC) + timedelta(minutes=10)  # b's clock runs ten minutes ahead
    assert node_b.claim("m-1", skewed) is None
    assert node_b.claim_next(frozenset({State.READY}), skewed) == []
    assert node_a.owner_of("m-1") == ("a", held.fence)


def test_only_the_delivering_node_is_recorded_and_postprocessing_is_written_once(
    node_a: PgJournal, node_b: PgJournal
) -> None:
    node_a.record_ready(sub(), NOW)
    claim = node_b.claim("m-1", NOW)
    assert claim is not None
    for state in DELIVERY:
        node_b.transition_fenced(claim, state, NOW)
    node_b.start_manifest_session(claim, NOW)
    node_b.transition_fenced(claim, State.COMPLETE, NOW)
    assert node_a.delivered_by("m-1") == "b"
    assert node_b.unfinished() == ["m-1"]  # b's to archive, at its next turn if it died here
    assert node_a.unfinished() == []
    node_b.mark_postprocessed("m-1", NOW, "archived")
    node_b.mark_postprocessed("m-1", NOW, "archived")
    assert node_b.unfinished() == []
    assert [h[2] for h in node_a.history("m-1")].count("archived") == 1
    assert node_a.counts(node="b") == {State.COMPLETE: 1}
    assert node_a.counts(node="a") == {}


def test_a_fleet_records_a_ready_submission_once_whoever_sees_it(
    node_a: PgJournal, node_b: PgJournal
) -> None:
    assert node_a.record_ready(sub(), NOW)
    assert not node_b.record_ready(sub(), NOW)
    assert [h[1] for h in node_a.history("m-1")] == ["ready"]


def test_a_failure_every_node_sees_is_decided_by_the_first_only(
    node_a: PgJournal, node_b: PgJournal
) -> None:
    # Both trackers fail the same pending manifest: only the first quarantines and reports.
    node_a.record_pending("m-1", "w", PurePosixPath("m.xml"), NOW, {})
    why = (Problem("missing-file", "a.mov is missing"),)
    assert node_a.record_failed("m-1", "w", PurePosixPath("m.xml"), why, NOW)
    assert not node_b.record_failed("m-1", "w", PurePosixPath("m.xml"), why, NOW)
    # a's answer lost at COMMIT, its tracker asks again: still a's to quarantine and report
    assert node_a.record_failed("m-1", "w", PurePosixPath("m.xml"), why, NOW)
    assert [h[1] for h in node_a.history("m-1")] == ["pending", "failed"]  # failed once
    node_b.record_ready(sub("m-2"), NOW)  # made ready by a's tracker first: not b's to fail
    assert not node_b.record_failed("m-2", "w", PurePosixPath("m.xml"), why, NOW)
    assert node_a.state_of("m-2") is State.READY


def test_the_latest_generation_is_found_by_its_number_not_by_a_node_s_clock(
    node_a: PgJournal, node_b: PgJournal
) -> None:
    # a's clock is ten minutes fast: its m was recorded "later" than b's m~2.
    node_a.record_ready(sub("m"), NOW + timedelta(minutes=10))
    delivered(node_a, "m")  # and archived: the same bytes dropped again are m~2
    node_b.record_ready(sub("m~2"), NOW + timedelta(minutes=2))
    latest = node_b.latest_generation("m")
    assert latest is not None
    assert latest.id == "m~2"  # else a third drop of the same bytes would be m~2 again


def test_a_hold_every_node_sees_is_told_by_one(node_a: PgJournal, node_b: PgJournal) -> None:
    node_a.record_ready(sub(), NOW)
    assert node_a.tell_once("m-1", "held:admin:no-credential")
    assert not node_b.tell_once("m-1", "held:admin:no-credential")
    assert not node_a.tell_once("m-1", "held:admin:no-credential")
    assert node_b.tell_once("m-1", "held:manifest-unconfirmed")  # another hold: told again


# -- nodes and wake-ups ---------------------------------------------------------------------


def test_nodes_are_listed_with_their_heartbeats(node_a: PgJournal, node_b: PgJournal) -> None:
    before = {n.name: n.heartbeat_at for n in node_a.nodes()}
    assert sorted(before) == ["a", "b"]
    node_b.heartbeat()
    after = {n.name: n for n in node_a.nodes()}
    assert after["b"].heartbeat_at > before["b"]
    assert after["a"].heartbeat_at == before["a"]
    assert after["b"].heartbeat_age >= timedelta(0)


def test_a_ready_submission_wakes_a_listening_node(
    pg_server: PgServer, db_url: str, node_a: PgJournal
) -> None:
    wake = Wakeups(db_url, password=pg_server.password)
    try:
        assert not wake.wait(0)  # connects and listens; nothing yet
        node_a.record_ready(sub(), NOW)
        assert wake.wait(30)
    finally:
        wake.close()


# -- faults -------------------------------------------------------------------------------------


def test_a_server_restart_fails_calls_cleanly_then_they_succeed_after_reconnecting(
    pg_own_server: PgServer,
) -> None:
    server = pg_own_server
    url = server.app_url(server.create_database())
    j = PgJournal(url, node="a", password=server.password, connect_timeout=2)
    try:
        j.record_ready(sub(), NOW)
        claim = j.claim("m-1", NOW)
        assert claim is not None
        j.transition_fenced(claim, State.QUEUED, NOW)
        server.stop()
        with pytest.raises(JournalUnavailable) as failed:
            j.transition_fenced(claim, State.SENDING_MEDIA, NOW)
        assert server.password not in str(failed.value)
        assert j.healthy() is JournalHealth.MISSING
        with pytest.raises(JournalUnavailable):
            j.state_of("m-1")  # within the backoff: refused at once
        server.start()

        def back() -> State | None:
            try:
                return j.state_of("m-1")
            except JournalUnavailable:
                return None

        assert wait_until(back, 30, "the journal to reconnect") is State.QUEUED
        assert j.healthy() is JournalHealth.OK
        j.transition_fenced(claim, State.SENDING_MEDIA, NOW)  # the claim survived the restart
        assert [h[1] for h in j.history("m-1")] == ["ready", "queued", "sending-media"]
    finally:
        j.close()


def test_a_database_down_at_start_is_reported_as_unavailable_without_its_password(
    pg_own_server: PgServer,
) -> None:
    server = pg_own_server
    url = server.app_url(server.create_database())
    server.stop()
    with pytest.raises(JournalUnavailable) as failed:
        PgJournal(url, node="a", password=server.password, connect_timeout=1)
    assert "cannot be reached" in str(failed.value)
    assert server.password not in str(failed.value)
    assert failed.value.hint  # what to check, for the startup message


def test_the_config_block_opens_it_with_the_password_from_a_file_never_the_url(
    pg_server: PgServer, db_url: str, tmp_path: Path
) -> None:
    secret = tmp_path / "pg.pass"
    secret.write_text(pg_server.password + "\n")
    j = PgJournal.open(FleetSettings(db_url, node="a", password_file=secret))
    try:
        assert j.node == "a"
        assert [n.name for n in j.nodes()] == ["a"]
    finally:
        j.close()
    with_password = db_url.replace("hotfolder@", f"hotfolder:{pg_server.password}@")
    with pytest.raises(JournalError) as refused:
        PgJournal.open(FleetSettings(with_password, node="a"))
    assert pg_server.password not in str(refused.value)
    assert "password_file" in refused.value.hint


def test_a_pending_row_of_an_earlier_identity_is_closed_by_the_next_one(
    tmp_path: Path, node_a: PgJournal, node_b: PgJournal
) -> None:
    # Node a noted m.xml while it was still being written (its id hashes size and mtime) and
    # was killed; b keys the finished file under another id. Nobody else knows a's id: the
    # next record of the same manifest closes it, on SQLite (a restart) as on PostgreSQL.
    sqlite = Journal(tmp_path / "j.sqlite")
    try:
        for first, then in ((sqlite, sqlite), (node_a, node_b)):
            first.record_pending("m-early", "w", PurePosixPath("m.xml"), NOW, {})
            first.record_pending("other", "w", PurePosixPath("other.xml"), NOW, {})
            first.record_ready(sub("m-sent"), NOW)
            delivered(first, "m-sent")  # m.xml delivered before: decided, not pending
            then.record_pending("m-1", "w", PurePosixPath("m.xml"), NOW, {})
            assert then.get("m-early") is None
            assert then.history("m-early") == []
            assert then.state_of("other") is State.PENDING  # another manifest
            assert then.state_of("m-sent") is State.COMPLETE  # decided: never closed
            then.record_pending("m-later", "w", PurePosixPath("m.xml"), NOW, {})
            then.record_ready(sub("m-final"), NOW)  # ready without pending: closes them too
            assert then.get("m-1") is None
            assert then.get("m-later") is None
    finally:
        sqlite.close()


def test_a_second_live_node_with_the_same_name_is_refused_until_the_first_retires(
    pg_server: PgServer, db_url: str, node_a: PgJournal
) -> None:
    # Two workstations cloned from one image share a host name: each would take the other's
    # claims for its own. The second waits (its start loop) until the first is gone.
    with pytest.raises(NodeNameInUse, match="another node named 'a' is alive"):
        PgJournal(db_url, node="a", password=pg_server.password)
    node_a.retire()  # a stopped: its own restart need not wait a lease
    again = PgJournal(db_url, node="a", password=pg_server.password)
    again.close()


def test_an_edited_manifest_waits_for_its_earlier_version_sent_by_another_node(
    node_a: PgJournal, node_b: PgJournal
) -> None:
    # a made m.xml ready and sends it; the editor saves it again; b, looking only now, keys
    # the new version under another id. Both on their way would send the same media twice.
    assert node_a.record_ready(sub("m-1"), NOW)
    claim = node_a.claim("m-1", NOW)
    assert claim is not None
    node_a.transition_fenced(claim, State.QUEUED, NOW)
    node_b.record_pending("m-2", "w", PurePosixPath("m.xml"), NOW, {})
    assert not node_b.record_ready(sub("m-2"), NOW)
    assert node_b.state_of("m-2") is State.PENDING  # it waits, and is looked at again
    for state in DELIVERY[1:]:
        node_a.transition_fenced(claim, state, NOW)
    node_a.start_manifest_session(claim, NOW)
    node_a.transition_fenced(claim, State.COMPLETE, NOW)
    assert node_b.record_ready(sub("m-2"), NOW)  # the earlier one ended: its turn
