from pathlib import Path, PurePosixPath

from hotfolder.intake.watch import (
    DirPoller,
    FolderGuard,
    FolderId,
    Mount,
    Presence,
    choose_mode,
    fs_type,
    judge,
    mount_of,
    scan,
)
from tests.fakes import FakeFileSystem

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /srv/dropbox rw,relatime - nfs4 nas:/export rw,vers=4.2
41 40 0:51 / /srv/dropbox/local rw,relatime - ext4 /dev/vdb rw
42 27 0:52 / /mnt/smb\\040share rw - cifs //fs/share rw
"""


def test_fs_type_takes_the_longest_mount_point() -> None:
    assert fs_type(Path("/srv/dropbox/ooyala"), MOUNTINFO) == "nfs4"
    assert fs_type(Path("/srv/dropbox/local/x"), MOUNTINFO) == "ext4"
    assert fs_type(Path("/srv/dropboxes"), MOUNTINFO) == "ext4"
    assert fs_type(Path("/mnt/smb share/in"), MOUNTINFO) == "cifs"


def test_auto_polls_network_shares_only() -> None:
    assert choose_mode("auto", Path("/srv/dropbox/ooyala"), MOUNTINFO) == "poll"
    assert choose_mode("auto", Path("/mnt/smb share"), MOUNTINFO) == "poll"
    assert choose_mode("auto", Path("/home/x"), MOUNTINFO) == "inotify"
    assert choose_mode("inotify", Path("/srv/dropbox"), MOUNTINFO) == "inotify"
    assert choose_mode("poll", Path("/home"), MOUNTINFO) == "poll"


def test_the_poller_lists_only_changed_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "old.mov").write_bytes(b"x")
    poller = DirPoller(tmp_path)
    assert poller.poll() == [PurePosixPath("a/old.mov")]
    assert poller.poll() == []  # nothing changed: nothing listed
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "b" / "deep" / "m.xml").write_text("<rss/>")
    (tmp_path / "a" / ".hidden.xml").write_text("x")  # ignored, but it changes folder a
    assert set(poller.poll()) == {PurePosixPath("b/deep/m.xml"), PurePosixPath("a/old.mov")}


def test_the_poller_skips_its_own_folders(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "m.xml").write_text("x")
    (tmp_path / "m.xml").write_text("x")
    poller = DirPoller(tmp_path, skip=(tmp_path / "archive",))
    assert poller.poll() == [PurePosixPath("m.xml")]


def test_mount_of_decodes_escapes_and_takes_the_last_of_stacked_mounts() -> None:
    stacked = MOUNTINFO + "43 42 0:53 / /mnt/smb\\040share rw - tmpfs tmpfs rw\n"
    assert mount_of(Path("/mnt/smb share/in"), stacked) == Mount(43, "/mnt/smb share", "tmpfs")
    assert mount_of(Path("/srv/dropbox/ooyala"), MOUNTINFO) == Mount(40, "/srv/dropbox", "nfs4")
    assert mount_of(Path("/anything"), "") is None


SHARE = FolderId(dev=51, ino=2, mount_id=40, mount_point="/srv/dropbox")


def test_a_bare_mount_point_is_unmounted_not_present() -> None:
    # The share went away: the same path now leads to the folder on the file system below.
    below = FolderId(dev=254, ino=1234, mount_id=27, mount_point="/")
    assert judge(SHARE, below) is Presence.UNMOUNTED
    # A bind mount from the same file system: same device, but the mount below holds it now.
    bind = FolderId(dev=254, ino=77, mount_id=41, mount_point="/srv/dropbox")
    assert judge(bind, FolderId(254, 1234, 27, "/")) is Presence.UNMOUNTED
    assert not Presence.UNMOUNTED.usable


def test_the_same_folder_is_present_and_another_one_replaced() -> None:
    assert judge(SHARE, SHARE) is Presence.PRESENT
    recreated = FolderId(dev=51, ino=99, mount_id=40, mount_point="/srv/dropbox")
    assert judge(SHARE, recreated) is Presence.REPLACED
    remounted = FolderId(dev=52, ino=2, mount_id=60, mount_point="/srv/dropbox")
    assert judge(SHARE, remounted) is Presence.REPLACED  # a new mount: watch and scan again
    mounted_later = FolderId(dev=52, ino=2, mount_id=60, mount_point="/srv/dropbox/ooyala")
    assert judge(FolderId(254, 5, 27, "/"), mounted_later) is Presence.REPLACED
    assert judge(None, SHARE) is Presence.REPLACED  # not there when watching began
    assert judge(SHARE, None) is Presence.MISSING
    assert judge(SHARE, SHARE, lost=True) is Presence.REPLACED  # its watch ended: a new one
    below = FolderId(dev=254, ino=1234, mount_id=27, mount_point="/")
    assert judge(SHARE, below, lost=True) is Presence.UNMOUNTED
    # Without a mount table only device and inode count: never called unmounted.
    assert judge(FolderId(51, 2, 0, ""), FolderId(254, 9, 0, "")) is Presence.REPLACED


def test_the_guard_reads_the_real_folder(tmp_path: Path) -> None:
    guard = FolderGuard(mountinfo=lambda: MOUNTINFO)
    assert guard.check() is Presence.MISSING  # nothing remembered yet
    folder, other = tmp_path / "drop", tmp_path / "other"
    folder.mkdir()
    other.mkdir()
    guard.remember(folder)
    assert guard.check() is Presence.PRESENT
    folder.rmdir()
    assert guard.check() is Presence.MISSING
    other.rename(folder)  # another folder put in its place
    assert guard.check() is Presence.REPLACED
    guard.remember(folder)
    assert guard.check() is Presence.PRESENT
    # Deleted and made again can get the same inode number: the watch's end says it is new.
    guard.lost()
    assert guard.check() is Presence.REPLACED
    guard.remember(folder)
    assert guard.check() is Presence.PRESENT


# -- the scanner and the poller through the Listing seam, on a fake file system ---------------

DROP = Path("/drop")


def test_the_poller_lists_a_folder_again_only_when_a_name_in_it_changes() -> None:
    fs = FakeFileSystem()
    fs.write(DROP / "a" / "old.mov", b"x")
    fs.write(DROP / "b" / "m.xml", b"<rss/>")
    poller = DirPoller(DROP, listing=fs)
    assert set(poller.poll()) == {PurePosixPath("a/old.mov"), PurePosixPath("b/m.xml")}
    fs.listed.clear()
    fs.append(DROP / "a" / "old.mov", b"more")  # changed in place: the tracker's business
    assert poller.poll() == []
    assert fs.listed == []  # three folders, three mtimes read, none listed
    fs.write(DROP / "b" / "new.mov", b"y")
    assert set(poller.poll()) == {PurePosixPath("b/m.xml"), PurePosixPath("b/new.mov")}
    assert fs.listed == [str(DROP / "b")]


def test_a_scan_passes_over_unreadable_and_skipped_folders() -> None:
    fs = FakeFileSystem()
    fs.write(DROP / "m.xml", b"<rss/>")
    fs.write(DROP / "locked" / "secret.mov", b"x")
    fs.write(DROP / "archive" / "sent.xml", b"<rss/>")
    fs.write(DROP / "deep" / "er" / "a.mov", b"x")
    fs.specials.add(DROP / "pipe")
    fs.unreadable.add(DROP / "locked")
    found = set(scan(DROP, skip=(DROP / "archive",), listing=fs))
    assert found == {PurePosixPath("m.xml"), PurePosixPath("deep/er/a.mov")}
