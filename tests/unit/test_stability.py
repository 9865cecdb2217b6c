from pathlib import PurePosixPath

from hotfolder.assemble.stability import StabilityTracker
from hotfolder.model import FileIdentity

P = PurePosixPath("clip.mov")


def ident(size: int, mtime: int = 1, inode: int = 7) -> FileIdentity:
    return FileIdentity(size, mtime, mtime, inode)


def test_first_sighting_starts_the_window_even_for_an_old_file() -> None:
    t = StabilityTracker(5)
    t.observe(P, ident(10), now=100)
    assert not t.is_stable(P, 104.9)
    assert t.is_stable(P, 105)


def test_a_change_restarts_the_window() -> None:
    t = StabilityTracker(5)
    t.observe(P, ident(10), now=100)
    t.observe(P, ident(20, mtime=2), now=104)
    assert not t.is_stable(P, 108.9)
    assert t.is_stable(P, 109)


def test_an_event_restarts_the_window_even_if_stat_looks_the_same() -> None:
    t = StabilityTracker(5)
    t.observe(P, ident(10), now=100)
    t.event(P, now=103)
    t.observe(P, ident(10), now=104)
    assert not t.is_stable(P, 107.9)
    assert t.is_stable(P, 108)


def test_same_size_new_inode_is_a_change() -> None:
    t = StabilityTracker(5)
    t.observe(P, ident(10, inode=1), now=100)
    t.observe(P, ident(10, inode=2), now=103)
    assert not t.is_stable(P, 105)
    assert t.is_stable(P, 108)


def test_empty_file_needs_three_windows() -> None:
    t = StabilityTracker(5)
    t.observe(P, ident(0), now=100)
    assert not t.is_stable(P, 114.9)
    assert t.is_stable(P, 115)


def test_missing_file_is_never_stable() -> None:
    t = StabilityTracker(5)
    t.observe(P, None, now=100)
    assert not t.is_stable(P, 1000)
    assert t.stable_at(P) is None


def test_prune_forgets_only_event_only_paths() -> None:
    t = StabilityTracker(5)
    t.event(PurePosixPath("noise.bin"), now=100)
    t.observe(P, ident(1), now=100)
    t.prune_events(older_than=200)
    assert t.identity(P) == ident(1)
    assert t.stable_at(PurePosixPath("noise.bin")) is None


def test_a_writer_that_holds_the_file_open_keeps_it_unsettled() -> None:
    t = StabilityTracker(5, writer_cap=100)
    t.observe(P, ident(10), now=100)
    t.written(P, now=100)
    assert not t.is_stable(P, 150), "modified and not closed: still being written"
    t.closed(P)
    assert t.is_stable(P, 150)


def test_a_lost_close_event_delays_at_most_writer_cap() -> None:
    t = StabilityTracker(5, writer_cap=100)
    t.observe(P, ident(10), now=100)
    t.written(P, now=100)
    assert not t.is_stable(P, 199)
    assert t.is_stable(P, 200)
