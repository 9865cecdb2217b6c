import json
import os
import random
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.model import FileIdentity, ManifestFormat, Problem, State, Submission, SubmissionFile
from hotfolder.state import journal as journal_module
from hotfolder.state import journal_file
from hotfolder.state.journal import (
    Journal,
    JournalDamaged,
    JournalHealth,
    JournalTooNew,
    StaleTransition,
)
from hotfolder.state.reader import MAX_PAGE, Filters, JournalReader

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def sub(sid: str = "m-1") -> Submission:
    ident = FileIdentity(10, 1, 1, 5)
    media = (SubmissionFile(PurePosixPath("a.mov"), PurePosixPath("a.mov"), ident),)
    manifest = SubmissionFile(
        PurePosixPath("m.xml"), PurePosixPath("m.xml"), FileIdentity(3, 2, 2, 6)
    )
    return Submission(sid, "w", manifest, media, ManifestFormat.OOYALA_MRSS)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "j.sqlite")


def test_submission_round_trips(journal: Journal) -> None:
    journal.record_ready(sub(), NOW)
    row = journal.get("m-1")
    assert row is not None
    assert row.state is State.READY
    assert row.submission() == sub()
    assert row.bytes_total == 13


def test_transitions_follow_the_allowed_path(journal: Journal) -> None:
    journal.record_ready(sub(), NOW)
    for state in (
        State.QUEUED,
        State.SENDING_MEDIA,
        State.MEDIA_SENT,
        State.SENDING_MANIFEST,
        State.COMPLETE,
    ):
        journal.transition("m-1", state, NOW)
    assert journal.state_of("m-1") is State.COMPLETE
    assert [h[1] for h in journal.history("m-1")] == [
        "ready",
        "queued",
        "sending-media",
        "media-sent",
        "sending-manifest",
        "complete",
    ]


def test_a_stale_transition_is_refused(journal: Journal) -> None:
    journal.record_ready(sub(), NOW)
    with pytest.raises(StaleTransition):
        journal.transition("m-1", State.COMPLETE, NOW)  # manifest never sent
    assert journal.state_of("m-1") is State.READY


def test_pending_is_recorded_once_and_forgotten_if_gone(journal: Journal) -> None:
    assert journal.record_pending("p-1", "w", PurePosixPath("m.xml"), NOW, {"missing": ["a"]})
    assert not journal.record_pending("p-1", "w", PurePosixPath("m.xml"), NOW, {"missing": []})
    assert not journal.is_settled("p-1")
    journal.forget_pending("p-1")
    assert journal.get("p-1") is None


def test_failed_keeps_the_reasons(journal: Journal) -> None:
    journal.record_failed(
        "f-1",
        "w",
        PurePosixPath("m.xml"),
        (Problem("malformed-manifest", "bad XML", "re-export", "m.xml", 3),),
        NOW,
    )
    row = journal.get("f-1")
    assert row is not None
    assert row.state is State.FAILED
    assert row.error_code == "malformed-manifest"
    assert row.detail["problems"][0]["line"] == 3
    assert journal.is_settled("f-1")


def test_state_survives_reopening(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.record_ready(sub(), NOW)
    j.transition("m-1", State.QUEUED, NOW)
    j.close()
    again = Journal(tmp_path / "j.sqlite")
    assert again.state_of("m-1") is State.QUEUED
    assert again.counts() == {State.QUEUED: 1}


# -- damage, versions, limits ------------------------------------------------------------------

#: The journal as hotfolder 0.1.0 wrote it: no user_version, these tables, this row.
JOURNAL_0_1_0 = """
CREATE TABLE submissions (
    id TEXT PRIMARY KEY, watch TEXT NOT NULL, manifest TEXT NOT NULL, format TEXT,
    state TEXT NOT NULL, files TEXT NOT NULL DEFAULT '[]',
    bytes_total INTEGER NOT NULL DEFAULT 0, bytes_done INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, error_code TEXT, error_message TEXT,
    detail TEXT NOT NULL DEFAULT '{}', postprocessed INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX submissions_state ON submissions(state);
CREATE TABLE history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, submission_id TEXT NOT NULL, at TEXT NOT NULL,
    state TEXT NOT NULL, note TEXT NOT NULL DEFAULT ''
);
INSERT INTO submissions VALUES ('old-1', 'w', 'm.xml', 'ooyala-mrss', 'complete',
    '[{"relpath": "a.mov", "dest": "a.mov", "role": "media", "size": 10, "mtime_ns": 1,
       "ctime_ns": 1, "inode": 5},
      {"relpath": "m.xml", "dest": "m.xml", "role": "manifest", "size": 3, "mtime_ns": 2,
       "ctime_ns": 2, "inode": 6}]',
    13, 13, 0, NULL, NULL, '{}', 1, '2026-11-23T00:00:00+00:00', '2026-11-23T00:00:00+00:00');
INSERT INTO history (submission_id, at, state, note)
    VALUES ('old-1', '2026-11-23T00:00:00+00:00', 'complete', '');
"""


def _user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_a_journal_from_0_1_0_is_migrated_forward_and_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    old = sqlite3.connect(path)
    old.executescript(JOURNAL_0_1_0)
    old.close()
    assert _user_version(path) == 0
    j = Journal(path)
    row = j.get("old-1")
    assert row is not None
    assert row.state is State.COMPLETE
    assert row.postprocessed
    assert row.submission() == sub("old-1")  # device 0: not recorded then
    assert j.history("old-1") == [("2026-11-23T00:00:00+00:00", "complete", "")]
    j.close()
    assert _user_version(path) == journal_module.SCHEMA_VERSION >= 1
    db = sqlite3.connect(path)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert "history_submission" in indexes


def test_a_journal_from_a_newer_hotfolder_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalTooNew) as err:
        Journal(path)
    assert "schema version 99" in str(err.value)
    assert "newer hotfolder" in str(err.value)
    assert _user_version(path) == 99


def test_garbage_is_reported_as_damage_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(JournalDamaged) as err:
        Journal(path)
    assert "is damaged" in str(err.value)
    assert "hotfolder journal reset" in err.value.hint
    assert path.read_bytes() == b"this is not a database\n" * 200  # untouched


def test_a_damaged_page_is_found_by_the_integrity_check_at_open(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    for i in range(200):
        j.record_pending(f"p-{i}", "w", PurePosixPath(f"m{i}.xml"), NOW, {"pad": "x" * 200})
    j.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    # The middle of the file, among the rows' pages: a fixed page number may hit a small
    # table whose few cells sit past the scribble (schema v3's state_counts is page 4).
    middle = db.execute("PRAGMA page_count").fetchone()[0] // 2
    db.close()
    with path.open("r+b") as f:  # scribble over the middle of the table, keep the header
        f.seek(page * middle + 100)
        f.write(b"\xff" * 2000)
    with pytest.raises(JournalDamaged):
        Journal(path)


def test_reset_moves_the_damaged_journal_aside_with_its_wal_and_starts_anew(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"garbage")
    (tmp_path / "j.sqlite-wal").write_bytes(b"old wal")
    assert isinstance(journal_module.check(path), JournalDamaged)
    aside = journal_module.reset(path, NOW)
    assert aside.name == "j.sqlite.damaged-20261123T000000Z"
    assert aside.read_bytes() == b"garbage"
    assert (tmp_path / "j.sqlite.damaged-20261123T000000Z-wal").read_bytes() == b"old wal"
    assert journal_module.check(path) is None
    fresh = Journal(path)
    assert fresh.counts() == {}
    fresh.close()


def test_a_journal_deleted_or_replaced_while_open_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    assert j.healthy() is JournalHealth.OK
    path.unlink()
    assert j.healthy() is JournalHealth.MISSING
    path.write_bytes(b"")
    assert j.healthy() is JournalHealth.REPLACED
    j.close()


def test_the_journal_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        Journal(tmp_path / "state" / "j.sqlite").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for name in ("j.sqlite", "j.sqlite-wal"):
        if (tmp_path / "state" / name).exists():
            assert stat.S_IMODE((tmp_path / "state" / name).stat().st_mode) == 0o600, name


def test_long_errors_and_notes_are_capped(journal: Journal) -> None:
    huge = "row 1: bad; " * 10_000
    problems = tuple(Problem("bad-row", huge, huge) for _ in range(1000))
    journal.record_failed("f-1", "w", PurePosixPath("m.csv"), problems, NOW)
    row = journal.get("f-1")
    assert row is not None
    assert row.error_message is not None
    assert len(row.error_message) < 2100
    assert row.error_message.endswith(f"... ({len(huge) - 2000} more characters)")
    assert len(row.detail["problems"]) == 50
    assert row.detail["problems_left_out"] == 950
    assert all(len(p["message"]) < 2100 for p in row.detail["problems"])
    assert all(len(note) < 2100 for _, _, note in journal.history("f-1"))
    journal.record_ready(sub(), NOW)
    journal.record_attempt("m-1", NOW, 1, "x", huge)
    journal.transition("m-1", State.HELD, NOW, note=huge, error_message=huge)
    row = journal.get("m-1")
    assert row is not None
    assert row.error_message is not None
    assert len(row.error_message) < 2100
    assert all(len(note) < 2100 for _, _, note in journal.history("m-1"))


def test_ended_badly_since_counts_only_what_failed_or_was_held_after(journal: Journal) -> None:
    start = NOW + timedelta(minutes=1)
    later = start + timedelta(seconds=5)
    bad = (Problem("x", "bad"),)
    journal.record_failed("before", "w", PurePosixPath("a.xml"), bad, NOW)
    journal.record_failed("after", "w", PurePosixPath("b.xml"), bad, later)
    journal.record_ready(sub("held"), NOW)
    journal.transition("held", State.HELD, later)
    journal.record_ready(sub("done"), later)
    for state in (State.QUEUED, State.SENDING_MEDIA, State.MEDIA_SENT, State.SENDING_MANIFEST):
        journal.transition("done", state, later)
    journal.transition("done", State.COMPLETE, later)
    journal.record_ready(sub("released"), NOW)
    journal.transition("released", State.HELD, later)
    journal.transition("released", State.READY, later)
    assert journal.ended_badly_since(start) == ["after", "held"]


# -- schema version 3: the overview's counts kept by triggers ----------------------------------

WATCHES = ("news", "sport", "promo")


def _counts_by_trigger(db: sqlite3.Connection) -> dict[tuple[str, str], int]:
    return {(w, s): n for w, s, n in db.execute("SELECT watch, state, n FROM state_counts")}


def _counts_by_scan(db: sqlite3.Connection) -> dict[tuple[str, str], int]:
    found = db.execute("SELECT watch, state, COUNT(*) FROM submissions GROUP BY watch, state")
    return {(w, s): n for w, s, n in found}


def _insert(db: sqlite3.Connection, sid: str, watch: str, state: State) -> None:
    # OR IGNORE as the journal records a pending drop: an ignored row must count nothing.
    db.execute(
        "INSERT OR IGNORE INTO submissions (id, watch, manifest, state, created_at, updated_at) "
        "VALUES (?, ?, 'm.xml', ?, '2026-11-23', '2026-11-23')",
        (sid, watch, str(state)),
    )


@pytest.mark.parametrize("seed", range(5))
def test_trigger_kept_counts_equal_a_group_by_after_random_changes(
    tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    rng = random.Random(seed)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for step in range(600):
            sid = f"s-{rng.randrange(120)}"
            action = rng.choice(("insert", "insert", "transition", "move", "touch", "forget"))
            if action == "insert":
                _insert(db, sid, rng.choice(WATCHES), rng.choice(list(State)))
            elif action == "transition":
                db.execute(
                    "UPDATE submissions SET state = ? WHERE id = ?",
                    (str(rng.choice(list(State))), sid),
                )
            elif action == "move":
                db.execute(
                    "UPDATE submissions SET watch = ?, state = ? WHERE id = ?",
                    (rng.choice(WATCHES), str(rng.choice(list(State))), sid),
                )
            elif action == "touch":  # a change that is no transition counts nothing
                db.execute("UPDATE submissions SET bytes_done = ? WHERE id = ?", (step, sid))
            else:
                db.execute("DELETE FROM submissions WHERE id = ?", (sid,))
            if step % 50 == 0:
                assert _counts_by_trigger(db) == _counts_by_scan(db)
        assert _counts_by_trigger(db) == _counts_by_scan(db)
        assert sum(_counts_by_scan(db).values()) > 0
    finally:
        db.close()


def test_the_journal_api_keeps_the_counts_too(journal: Journal) -> None:
    for i in range(4):
        journal.record_pending(f"m-{i}", "w", PurePosixPath(f"m{i}.xml"), NOW, {})
    journal.forget_pending("m-3")
    journal.record_ready(sub("m-0"), NOW)
    journal.transition("m-0", State.QUEUED, NOW)
    journal.forget("m-1")
    reader = JournalReader(journal.path)
    try:
        assert reader.counts() == {"w": {State.PENDING: 1, State.QUEUED: 1}}
    finally:
        reader.close()


def test_the_v3_migration_counts_the_rows_of_a_v2_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(journal_file.SCHEMA_V0)
    for step in journal_file.MIGRATIONS[:2]:
        step(db)
    db.execute("PRAGMA user_version = 2")
    rng = random.Random(3)
    for i in range(300):
        _insert(db, f"s-{i}", rng.choice(WATCHES), rng.choice(list(State)))
    expected = _counts_by_scan(db)
    db.close()
    Journal(path).close()
    assert _user_version(path) == journal_file.SCHEMA_VERSION >= 3
    db = sqlite3.connect(path)
    try:
        assert _counts_by_trigger(db) == expected
    finally:
        db.close()


# -- schema version 4: names found by a trigram index ------------------------------------------

NAME_PARTS = ("Clip", "clip", "café", "news_", "50%", 'say"hi', "b-roll", "Ünï", "take2", "x")


def _random_name(rng: random.Random) -> str:
    return "".join(rng.choice(NAME_PARTS) for _ in range(rng.randint(1, 3)))


def _files_json(rng: random.Random) -> str:
    names = [_random_name(rng) + ".mov" for _ in range(rng.randint(0, 3))]
    return json.dumps([{"relpath": n, "dest": "out/" + n, "size": 1} for n in names])


def _found(reader: JournalReader, text: str) -> set[str]:
    return {r.id for r in reader.page(Filters(text=text), limit=MAX_PAGE).rows}


def _same_as_the_scan(path: Path, monkeypatch: pytest.MonkeyPatch, texts: list[str]) -> None:
    indexed = JournalReader(path)
    assert indexed._name_search()  # the index is there and this reader uses it
    with monkeypatch.context() as scanning:
        scanning.setattr(JournalReader, "_name_search", lambda _self: False)
        scanned = {text: _found(JournalReader(path), text) for text in texts}
    try:
        for text in texts:
            assert _found(indexed, text) == scanned[text], text
        assert any(scanned.values())
    finally:
        indexed.close()


SEARCHES = ["clip", "CLIP", "café", "ws_", "0%", 'y"h', "b-r", "ünï", "ake2.mo", "x.mov", "zzz"]


@pytest.mark.skipif(not journal_file.TRIGRAM, reason="SQLite < 3.34: no trigram")
def test_the_name_index_finds_the_rows_the_scan_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    rng = random.Random(7)
    db = sqlite3.connect(path, isolation_level=None)
    for i in range(150):
        db.execute(
            "INSERT INTO submissions (id, watch, manifest, state, files, created_at, updated_at)"
            " VALUES (?, 'w', ?, 'ready', ?, ?, ?)",
            (f"s-{i}", _random_name(rng) + ".xml", _files_json(rng), f"t{i:04d}", f"t{i:04d}"),
        )
    for i in range(0, 150, 4):  # renamed files, a moved manifest, forgotten rows
        db.execute("UPDATE submissions SET files = ? WHERE id = ?", (_files_json(rng), f"s-{i}"))
    for i in range(1, 150, 9):
        db.execute("UPDATE submissions SET manifest = ? WHERE id = ?", ("other.xml", f"s-{i}"))
    for i in range(2, 150, 7):
        db.execute("DELETE FROM submissions WHERE id = ?", (f"s-{i}",))
    db.close()
    _same_as_the_scan(path, monkeypatch, SEARCHES)


@pytest.mark.skipif(not journal_file.TRIGRAM, reason="SQLite < 3.34: no trigram")
def test_the_v4_migration_indexes_the_names_of_a_v3_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(journal_file.SCHEMA_V0)
    for step in journal_file.MIGRATIONS[:3]:
        step(db)
    db.execute("PRAGMA user_version = 3")
    rng = random.Random(5)
    for i in range(100):
        db.execute(
            "INSERT INTO submissions (id, watch, manifest, state, files, created_at, updated_at)"
            " VALUES (?, 'w', ?, 'ready', ?, 't', 't')",
            (f"s-{i}", _random_name(rng) + ".xml", _files_json(rng)),
        )
    db.close()
    Journal(path).close()
    assert _user_version(path) == journal_file.SCHEMA_VERSION >= 4
    _same_as_the_scan(path, monkeypatch, SEARCHES)
