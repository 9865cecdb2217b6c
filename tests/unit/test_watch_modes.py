from pathlib import Path, PurePosixPath

from hotfolder.watch import DirPoller, choose_mode, fs_type

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
