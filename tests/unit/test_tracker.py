"""The watch tracker with a fake filesystem and explicit time: no sleeps, no real files."""

from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.assemble.decisions import Decision, decision_id
from hotfolder.assemble.tracker import (
    Failed,
    Gone,
    GoneWhy,
    Ready,
    Waiting,
    WatchSettings,
    WatchTracker,
)
from hotfolder.beneath import Look
from hotfolder.model import State
from tests import manifests
from tests.fakes import FakeFileSystem

ROOT = Path("/drop")
WINDOW = 5.0


@pytest.fixture
def fs() -> FakeFileSystem:
    return FakeFileSystem()


class Decided:
    """The journal, as the tracker sees it: these ids are decided, nothing is in flight."""

    def __init__(self, settled: set[str]) -> None:
        self.settled = settled

    def resolve(self, base: str) -> str | None:
        return None if base in self.settled else base

    def in_flight(self, sid: str) -> bool:
        return False


def tracker(fs: FakeFileSystem, settled: set[str] | None = None, **kw: float) -> WatchTracker:
    settings = WatchSettings("w", ROOT, WINDOW, **kw)  # type: ignore[arg-type]
    return WatchTracker(settings, fs, Decided(settled or set()))


def drop_all(fs: FakeFileSystem, t: WatchTracker, now: float) -> None:
    fs.write(ROOT / "my_video.mov", b"v" * 100)
    fs.write(ROOT / "my_thumbnail.jpg", b"j")
    fs.write(ROOT / "caption-1.dfxp", b"<tt/>")
    fs.write(ROOT / "m.xml", manifests.ooyala().encode())
    for name in ("my_video.mov", "my_thumbnail.jpg", "caption-1.dfxp", "m.xml"):
        t.on_event(PurePosixPath(name), now)


def made_ready(fs: FakeFileSystem, t: WatchTracker) -> Ready:
    """A whole drop at 0, ready one window later."""
    drop_all(fs, t, 0)
    t.check(0)
    (ready,) = t.check(WINDOW)
    assert isinstance(ready, Ready)
    return ready


def test_ready_after_one_window_with_every_file_pinned(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    drop_all(fs, t, now=0)
    first = t.check(0)
    assert isinstance(first[0], Waiting)
    assert t.next_due() == WINDOW
    assert t.check(WINDOW - 0.1) == []  # nothing due yet
    (ready,) = t.check(WINDOW)
    assert isinstance(ready, Ready)
    sub = ready.submission
    assert {str(f.relpath) for f in sub.media} == {
        "my_video.mov",
        "my_thumbnail.jpg",
        "caption-1.dfxp",
    }
    assert sub.manifest.relpath == PurePosixPath("m.xml")
    assert sub.media[0].identity == fs.identity(ROOT / sub.media[0].relpath)
    assert t.check(100, everything=True) == []  # decided once, not again


def test_slow_writer_keeps_the_submission_waiting(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    drop_all(fs, t, now=0)
    t.check(0)
    now = 0.0
    for _ in range(10):  # a chunk every 3 s: always inside the window
        now += 3
        fs.append(ROOT / "my_video.mov", b"more")
        t.on_event(PurePosixPath("my_video.mov"), now)
        assert not any(isinstance(d, Ready) for d in t.check(now))
    assert not any(isinstance(d, Ready) for d in t.check(now + WINDOW - 0.01, everything=True))
    assert any(isinstance(d, Ready) for d in t.check(now + WINDOW, everything=True))


def test_change_without_any_event_is_still_caught(fs: FakeFileSystem) -> None:
    """A network share delivers no events: the re-stat at the deadline sees the change."""
    t = tracker(fs)
    drop_all(fs, t, now=0)
    t.check(0)
    fs.append(ROOT / "my_video.mov", b"late bytes")  # no on_event
    decisions = t.check(WINDOW)
    assert not any(isinstance(d, Ready) for d in decisions)
    assert isinstance(t.check(2 * WINDOW)[0], Ready)


def test_missing_file_waits_then_arrival_event_wakes_it(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "m.xml", manifests.ooyala(manifests.ooyala_item("a.mov", None, None)).encode())
    t.on_event(PurePosixPath("m.xml"), 0)
    t.check(0)
    (waiting,) = t.check(WINDOW)
    assert isinstance(waiting, Waiting)
    assert waiting.missing == (PurePosixPath("a.mov"),)
    fs.write(ROOT / "a.mov", b"x")
    t.on_event(PurePosixPath("a.mov"), 6)
    assert t.next_due() == 6
    t.check(6)
    assert isinstance(t.check(6 + WINDOW)[0], Ready)


def test_files_that_never_arrive_fail_after_incomplete_after(fs: FakeFileSystem) -> None:
    t = tracker(fs, incomplete_after=60)
    fs.write(ROOT / "m.xml", manifests.ooyala(manifests.ooyala_item("a.mov", None, None)).encode())
    t.on_event(PurePosixPath("m.xml"), 0)
    t.check(0)
    assert isinstance(t.check(59, everything=True)[0], Waiting)
    (failed,) = t.check(60, everything=True)
    assert isinstance(failed, Failed)
    assert failed.problems[0].code == "incomplete"
    assert "a.mov" in failed.problems[0].message


def test_malformed_manifest_fails_once_settled_not_while_being_written(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "m.xml", manifests.ooyala().encode()[:100])
    t.on_event(PurePosixPath("m.xml"), 0)
    assert isinstance(t.check(0)[0], Waiting)  # half-written: no verdict yet
    (failed,) = t.check(WINDOW)
    assert isinstance(failed, Failed)
    assert failed.problems[0].code == "malformed-manifest"


def test_rule_problems_fail_with_the_files_present(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "good.mov", b"x")
    fs.write(
        ROOT / "m.xml",
        manifests.ooyala(manifests.ooyala_item("good.mov", None, "c.dfxp", lang="xx")).encode(),
    )
    t.on_scan([PurePosixPath("m.xml"), PurePosixPath("good.mov")], 0)
    t.check(0)
    (failed,) = t.check(WINDOW)
    assert isinstance(failed, Failed)
    assert failed.problems[0].code == "bad-caption-language"
    assert failed.present == (PurePosixPath("good.mov"),)


def test_symlink_out_of_the_folder_fails(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "a.mov", b"secret")
    fs.links.add(ROOT / "a.mov")
    fs.write(ROOT / "m.xml", manifests.ooyala(manifests.ooyala_item("a.mov", None, None)).encode())
    t.on_event(PurePosixPath("m.xml"), 0)
    t.check(0)
    (failed,) = t.check(WINDOW)
    assert isinstance(failed, Failed)
    assert failed.problems[0].code == "path-escapes"


def test_manifest_removed_while_waiting_is_gone(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "m.xml", manifests.ooyala().encode())
    t.on_event(PurePosixPath("m.xml"), 0)
    (waiting,) = t.check(0)
    assert isinstance(waiting, Waiting)
    fs.remove(ROOT / "m.xml")
    t.on_event(PurePosixPath("m.xml"), 1)
    (gone,) = t.check(1)
    assert isinstance(gone, Gone)
    assert gone.submission_id == waiting.submission_id


def test_a_settled_submission_is_not_started_again(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    drop_all(fs, t, 0)
    t.check(0)
    (ready,) = t.check(WINDOW)
    assert isinstance(ready, Ready)
    again = tracker(fs, settled={ready.submission.id})  # a restarted daemon, journal says sent
    again.on_scan([PurePosixPath("m.xml")], 100)
    assert again.check(100) == []
    assert again.check(200, everything=True) == []


class Recorded(Decided):
    """...and, like the journal, a decided manifest whose leaving was recorded is a new drop
    (the next generation) when its bytes come back."""

    def __init__(self) -> None:
        super().__init__(set())
        self.left: set[str] = set()

    def resolve(self, base: str) -> str | None:
        return f"{base}~2" if base in self.left else super().resolve(base)


def test_the_same_manifest_put_back_before_its_leaving_was_seen_is_a_new_drop(
    fs: FakeFileSystem,
) -> None:
    known = Recorded()
    t = WatchTracker(WatchSettings("w", ROOT, WINDOW), fs, known)
    first = made_ready(fs, t)
    known.settled.add(first.submission.id)
    manifest, sent = ROOT / "m.xml", fs.files[ROOT / "m.xml"]
    fs.remove(manifest)  # archived or deleted after delivery...
    t.on_event(PurePosixPath("m.xml"), 10, "deleted")
    fs.files[manifest] = replace(sent, ctime_ns=sent.ctime_ns + 1)  # ...and linked back at once
    t.on_event(PurePosixPath("m.xml"), 10, "created")
    assert t.check(10) == [Gone(first.submission.id, PurePosixPath("m.xml"), GoneWhy.LEFT)]
    known.left.add(first.submission.id)  # what the watch records for that Gone
    later: list[Decision] = []
    while t.next_due() < 10 + 3 * WINDOW:
        later += t.check(t.next_due())
    assert isinstance(later[-1], Ready), later
    assert {decision_id(d) for d in later} == {f"{first.submission.id}~2"}


@pytest.mark.parametrize("put_back_before_the_look", [True, False])
def test_a_leaving_that_could_not_be_recorded_is_said_again(
    fs: FakeFileSystem, put_back_before_the_look: bool
) -> None:
    """Said and not recorded (a full disk, a fleet's database away), the journal would take
    the manifest put back for the delivered submission: the tracker says it left again."""
    known = Recorded()
    t = WatchTracker(WatchSettings("w", ROOT, WINDOW), fs, known)
    first = made_ready(fs, t)
    known.settled.add(first.submission.id)
    manifest, sent = ROOT / "m.xml", fs.files[ROOT / "m.xml"]
    left = Gone(first.submission.id, PurePosixPath("m.xml"), GoneWhy.LEFT)
    fs.remove(manifest)
    t.on_event(PurePosixPath("m.xml"), 10, "deleted")
    if put_back_before_the_look:
        fs.files[manifest] = replace(sent, ctime_ns=sent.ctime_ns + 1)
    assert t.check(10) == [left]
    t.reconsider(left, 11)  # what the watch does when recording it failed
    if not put_back_before_the_look:
        fs.files[manifest] = replace(sent, ctime_ns=sent.ctime_ns + 1)
        t.on_event(PurePosixPath("m.xml"), 10.5, "created")
    assert t.check(11) == [left]
    known.left.add(first.submission.id)  # recorded this time
    later: list[Decision] = []
    while t.next_due() < 11 + 3 * WINDOW:
        later += t.check(t.next_due())
    assert isinstance(later[-1], Ready), later
    assert {decision_id(d) for d in later} == {f"{first.submission.id}~2"}


def test_a_rewritten_manifest_is_a_new_submission(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    drop_all(fs, t, 0)
    t.check(0)
    (first,) = t.check(WINDOW)
    fs.write(ROOT / "m.xml", manifests.ooyala(manifests.ooyala_item(guid="v2")).encode())
    t.on_event(PurePosixPath("m.xml"), 20)
    t.check(20)
    (second,) = t.check(20 + WINDOW)
    assert isinstance(first, Ready)
    assert isinstance(second, Ready)
    assert first.submission.id != second.submission.id


def test_caption_xml_is_not_taken_for_a_manifest(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "captions.xml", b'<tt xmlns="http://www.w3.org/ns/ttml"/>')
    t.on_event(PurePosixPath("captions.xml"), 0)
    (seen,) = t.check(0)  # while it settles it might be a manifest: a pending row is noted
    assert isinstance(seen, Waiting)
    (closed,) = t.check(WINDOW)
    assert closed == Gone(seen.submission_id, seen.manifest, GoneWhy.NOT_A_MANIFEST), (
        "the pending row must be closed, not left pending forever"
    )
    assert t.waiting == 0
    assert t.check(WINDOW * 2, everything=True) == []


def test_a_manifest_replaced_while_waiting_closes_the_old_pending_row(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "m.xml", manifests.ooyala().encode())
    t.on_event(PurePosixPath("m.xml"), 0)
    (first,) = t.check(0)
    assert isinstance(first, Waiting)
    fs.write(ROOT / "m.xml", manifests.ooyala(manifests.ooyala_item(guid="v2")).encode())
    t.on_event(PurePosixPath("m.xml"), 1)
    replaced, second = t.check(1)
    assert replaced == Gone(first.submission_id, first.manifest, GoneWhy.REPLACED)
    assert isinstance(second, Waiting)
    assert second.submission_id != first.submission_id


def test_a_named_fifo_or_link_fails_at_once_with_every_other_problem(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.specials.add(ROOT / "my_video.mov")
    fs.links.add(ROOT / "sub")
    item = manifests.ooyala_item("my_video.mov", "sub/t.jpg", "bad&amp;name.dfxp")
    fs.write(ROOT / "m.xml", manifests.ooyala(item).encode())
    t.on_event(PurePosixPath("m.xml"), 0)
    t.check(0)
    (failed,) = t.check(WINDOW)  # at once: not after incomplete_after
    assert isinstance(failed, Failed)
    codes = sorted(p.code for p in failed.problems)
    assert codes == ["bad-file-name", "not-a-file", "path-escapes"], failed.problems
    assert failed.present == ()


def test_a_missing_file_is_listed_with_a_rule_failure(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "v.mov", b"v")
    item = manifests.ooyala_item("v.mov", "thumb.jpg", "a&amp;b.dfxp")
    fs.write(ROOT / "m.xml", manifests.ooyala(item).encode())
    t.on_event(PurePosixPath("m.xml"), 0)
    t.check(0)
    (failed,) = t.check(WINDOW)
    assert isinstance(failed, Failed)
    assert {(p.code, p.path) for p in failed.problems} >= {
        ("bad-file-name", "a&b.dfxp"),
        ("missing-file", "thumb.jpg"),
    }


def test_a_name_in_another_unicode_form_is_refused_at_once(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "cafe\u0301.mov", b"v")  # NFD, as macOS writes it
    fs.write(
        ROOT / "m.xml",
        manifests.ooyala(manifests.ooyala_item("caf\u00e9.mov", None, None)).encode(),
    )
    t.on_event(PurePosixPath("m.xml"), 0)
    t.check(0)
    (failed,) = t.check(WINDOW)
    assert isinstance(failed, Failed)
    assert [p.code for p in failed.problems] == ["name-encoding"]


def test_a_waiting_manifest_looks_only_at_files_that_changed(fs: FakeFileSystem) -> None:
    names = [f"v{i}.mov" for i in range(200)]
    items = [manifests.ooyala_item(n, None, None, guid=n) for n in names]
    fs.write(ROOT / "m.xml", manifests.ooyala(*items).encode())
    looks: list[PurePosixPath] = []
    real_look = fs.look

    def counting_look(root: Path, relpath: PurePosixPath) -> Look:
        looks.append(relpath)
        return real_look(root, relpath)

    fs.look = counting_look  # type: ignore[method-assign]
    t = tracker(fs)
    t.on_event(PurePosixPath("m.xml"), 0)
    t.check(0)
    t.check(WINDOW)  # settled manifest, every file missing: one full look
    looks.clear()
    fs.write(ROOT / "v7.mov", b"x")
    t.on_event(PurePosixPath("v7.mov"), 10)
    t.check(10)
    assert looks == [PurePosixPath("m.xml"), PurePosixPath("v7.mov")]
    assert t.next_due() == 10 + WINDOW, "v7.mov's window, not a tick"


def test_ignored_names_are_never_candidates(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    for name in ("._m.xml", "m.xml.partial", ".hidden.xml", "aspera-transfer-1-manifest.txt"):
        fs.write(ROOT / name, manifests.ooyala().encode())
        t.on_event(PurePosixPath(name), 0)
    assert t.check(0) == []
    assert t.next_due() == float("inf")


def test_states_are_named_like_the_aspera_client() -> None:
    assert [s.value for s in State] == [
        "pending",
        "ready",
        "queued",
        "sending-media",
        "media-sent",
        "sending-manifest",
        "complete",
        "failed",
        "held",
    ]


def two_manifests_sharing_a_file(fs: FakeFileSystem, t: WatchTracker) -> None:
    fs.write(ROOT / "shared.mov", b"x")
    for name in ("one.xml", "two.xml"):
        fs.write(
            ROOT / name,
            manifests.ooyala(manifests.ooyala_item("shared.mov", None, None, guid=name)).encode(),
        )
        t.on_event(PurePosixPath(name), 0)
    t.check(0)


def test_a_file_named_by_two_manifests_fails_the_newer_at_once_naming_the_other(
    fs: FakeFileSystem,
) -> None:
    t = tracker(fs)
    two_manifests_sharing_a_file(fs, t)
    decisions = t.check(WINDOW + 1, everything=True)
    failed = [d for d in decisions if isinstance(d, Failed)]
    assert [str(f.manifest) for f in failed] == ["two.xml"], "the newer one (by path on a tie)"
    assert failed[0].problems[0].code == "conflict"
    assert "one.xml" in failed[0].problems[0].message, "the reason names the other manifest"
    assert failed[0].present == (), "a shared file must stay for the other manifest"
    ready = [d for d in decisions + t.check(WINDOW + 2) if isinstance(d, Ready)]
    assert [str(r.submission.manifest.relpath) for r in ready] == ["one.xml"]


def test_a_manifest_naming_a_file_already_sent_fails_at_once(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    drop_all(fs, t, 0)
    t.check(0)
    (ready,) = t.check(WINDOW)
    assert isinstance(ready, Ready)
    fs.write(ROOT / "again.xml", manifests.ooyala(manifests.ooyala_item(guid="again")).encode())
    t.on_event(PurePosixPath("again.xml"), 10)
    t.check(10)
    (failed,) = t.check(10 + WINDOW)
    assert isinstance(failed, Failed)
    assert {p.code for p in failed.problems} == {"conflict"}
    assert "m.xml" in failed.problems[0].message


def test_an_oversized_manifest_is_refused_unread(fs: FakeFileSystem) -> None:
    t = tracker(fs, max_manifest_bytes=1000)
    fs.write(ROOT / "huge.xml", b"<rss>" + b" " * 5000)
    t.on_event(PurePosixPath("huge.xml"), 0)
    t.check(0)
    (failed,) = t.check(WINDOW)
    assert isinstance(failed, Failed)
    assert failed.problems[0].code == "manifest-too-large"
    assert ROOT / "huge.xml" not in fs.reads  # refused by its size alone, never opened


def test_a_manifest_whose_own_name_has_a_line_break_fails_at_once(fs: FakeFileSystem) -> None:
    t = tracker(fs)
    fs.write(ROOT / "ep\n1.xml", manifests.ooyala().encode())
    t.on_event(PurePosixPath("ep\n1.xml"), 0)
    (failed,) = t.check(0)  # at once: not once settled, and never after the media went
    assert isinstance(failed, Failed)
    assert [p.code for p in failed.problems] == ["unsendable-name"]


class Sending(Decided):
    """These ids are being sent right now."""

    def __init__(self, sending: set[str]) -> None:
        super().__init__(set())
        self.sending = sending

    def in_flight(self, sid: str) -> bool:
        return sid in self.sending


def test_a_manifest_edited_while_its_submission_is_sent_waits_for_that_delivery(
    fs: FakeFileSystem,
) -> None:
    known = Sending(set())
    t = WatchTracker(WatchSettings("w", ROOT, WINDOW), fs, known)
    ready = made_ready(fs, t)
    known.sending.add(ready.submission.id)
    fs.write(ROOT / "m.xml", manifests.ooyala(manifests.ooyala_item(guid="edited")).encode())
    t.on_event(PurePosixPath("m.xml"), 20)
    assert t.check(20) == [], "a second submission in flight"
    assert t.check(20 + 2 * WINDOW) == [], "a second submission in flight"
    known.sending.clear()  # that delivery ended: the edited manifest is a submission of its own
    t.check(40)
    (second,) = t.check(40 + WINDOW)
    assert isinstance(second, Ready)
    assert second.submission.id != ready.submission.id


def test_a_reload_s_shorter_window_applies_to_what_already_waits(fs: FakeFileSystem) -> None:
    t = WatchTracker(WatchSettings("w", ROOT, 3600), fs, Decided(set()))
    drop_all(fs, t, now=0)
    (waiting,) = t.check(0)
    assert isinstance(waiting, Waiting)
    assert t.next_due() == 3600  # by the old window
    t.reconfigure(WatchSettings("w", ROOT, WINDOW))
    assert t.next_due() <= WINDOW  # looked at again, by the new one
    (ready,) = t.check(WINDOW)
    assert isinstance(ready, Ready)
