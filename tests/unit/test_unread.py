"""When a staged manifest's access time may vouch that ascp never read it (and when not)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotfolder.transfer.targets import unread


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    copy = tmp_path / "m-1.manifest"
    copy.write_text("<rss/>")
    unread.seal(copy)
    return copy


def marker(tmp_path: Path, witness: unread.Witness) -> Path:
    path = tmp_path / "manifest.attempt"
    path.write_text(witness.text())
    return path


def vouching(**kw: object) -> unread.Witness:
    fields: dict[str, object] = {
        "boot": unread.boot_id(),
        "reads_recorded": True,
        "ascp_reads_seen": True,
        **kw,
    }
    return unread.Witness(**fields)  # type: ignore[arg-type]


def test_a_sealed_copy_is_unread_until_something_reads_it(tmp_path: Path, staged: Path) -> None:
    attempt = marker(tmp_path, vouching())
    assert unread.proven_unread(attempt, staged)
    os.rename(staged, staged.with_name("renamed"))  # the gate's rename is not a read
    os.rename(staged.with_name("renamed"), staged)
    assert unread.proven_unread(attempt, staged)
    staged.read_bytes()
    assert not unread.proven_unread(attempt, staged)


@pytest.mark.parametrize(
    "witness",
    [
        vouching(boot="another-boot"),  # a power cut may have lost the access time
        vouching(boot=""),
        vouching(reads_recorded=False),  # a noatime state dir
        vouching(ascp_reads_seen=False),  # this ascp never showed its reads
    ],
    ids=["another-boot", "no-boot", "noatime", "ascp-unseen"],
)
def test_an_unread_copy_proves_nothing_without_a_vouching_witness(
    tmp_path: Path, staged: Path, witness: unread.Witness
) -> None:
    assert not unread.proven_unread(marker(tmp_path, witness), staged)


def test_a_marker_written_before_witnesses_existed_proves_nothing(
    tmp_path: Path, staged: Path
) -> None:
    attempt = tmp_path / "manifest.attempt"
    attempt.write_text("")
    assert not unread.proven_unread(attempt, staged)
    assert not unread.proven_unread(tmp_path / "none", staged)
    assert not unread.proven_unread(marker(tmp_path, vouching()), tmp_path / "gone")


@pytest.fixture
def noatime(tmp_path: Path) -> Iterator[Path]:
    """A folder on a noatime mount (the tests run as root in a mount namespace of their own)."""
    folder = tmp_path / "noatime"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noatime", "tmpfs", folder], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


def test_a_noatime_state_dir_is_found_out_by_the_probe(tmp_path: Path, noatime: Path) -> None:
    assert unread.reads_are_recorded(tmp_path / "probe")
    assert not unread.reads_are_recorded(noatime / "probe")
    assert not (noatime / "probe").exists()


def test_reads_are_seen_per_ascp_binary(tmp_path: Path, staged: Path) -> None:
    ascp = tmp_path / "ascp"
    ascp.write_text("#!/bin/sh\n")
    ascp.chmod(0o755)
    seen = unread.ReadsSeen(str(ascp), tmp_path / "work")
    seen.learn(staged)  # completed without reading it (--overwrite=diff skipped it)
    assert not seen.known()
    staged.read_bytes()
    seen.learn(staged)
    assert seen.known()
    ascp.write_text("#!/bin/sh\n# upgraded\n")  # another binary must show its reads again
    assert not seen.known()
