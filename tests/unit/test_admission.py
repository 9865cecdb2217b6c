"""May a ready submission start: space first, then the journal, then the account's quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotfolder.service.admission import Admission, Statvfs, Verdict, admit, low_on_space


@pytest.mark.parametrize(
    ("size", "in_flight", "space_low", "journal_lost", "verdict"),
    [
        (40, 50, False, False, Verdict.GO),
        (50, 50, False, False, Verdict.GO),  # exactly the quota fits
        (51, 50, False, False, Verdict.WAIT_QUOTA),
        (40, 0, True, False, Verdict.WAIT_SPACE),
        (101, 0, True, False, Verdict.WAIT_SPACE),  # a full disk is said before the quota
        (40, 0, False, True, Verdict.WAIT_JOURNAL),
        (40, 0, True, True, Verdict.WAIT_SPACE),
    ],
)
def test_the_verdict(
    size: int, in_flight: int, space_low: bool, journal_lost: bool, verdict: Verdict
) -> None:
    found = admit(size, in_flight, 100, space_low=space_low, journal_lost=journal_lost)
    assert found == Admission(verdict)
    assert found.waits is (verdict is not Verdict.GO)


def test_larger_than_the_quota_is_never_admitted_and_says_why() -> None:
    found = admit(101, 0, 100, space_low=False, journal_lost=False)
    assert found.verdict is Verdict.NEVER
    assert not found.waits
    assert found.problem is not None
    assert found.problem.code == "over-quota"
    assert "split it" in found.problem.hint


def fake_statvfs(free: dict[Path, int]) -> Statvfs:
    def statvfs(folder: Path) -> os.statvfs_result:
        if folder not in free:
            raise FileNotFoundError(folder)
        # bsize, frsize, blocks, bfree, bavail, files, ffree, favail, flag, namemax
        return os.statvfs_result((4096, 512, 0, 0, free[folder] // 512, 0, 0, 0, 0, 255))

    return statvfs


def test_low_on_space_names_the_folders_below_the_minimum_with_what_they_have() -> None:
    free = {Path("/state"): 512 * 10, Path("/archive"): 512 * 1000}
    statvfs = fake_statvfs(free)
    folders = [Path("/state"), Path("/archive"), Path("/gone")]
    assert low_on_space(folders, 512 * 100, statvfs) == {"/state": 5120}
    assert low_on_space(folders, 512 * 10, statvfs) == {}
