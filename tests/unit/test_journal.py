from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.journal import Journal, StaleTransition
from hotfolder.model import FileIdentity, ManifestFormat, Problem, State, Submission, SubmissionFile

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
