"""The config's `journal:` block (issue 13): typed, validated, documented; absent means the
SQLite journal, as always."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

from hotfolder.config import schema
from hotfolder.config import settings as config
from hotfolder.config.fleet import JournalSettings
from hotfolder.config.sections import Secret
from hotfolder.model import FileIdentity, submission_id
from tests.helpers import write_config

URL = "postgresql://hotfolder@db.example.com/hotfolder"


def with_journal(tmp_path: Path, block: object) -> str:
    data = yaml.safe_load(write_config(tmp_path).read_text())
    data["journal"] = block
    return yaml.safe_dump(data)


def test_the_journal_block_is_typed_with_paths_resolved(tmp_path: Path) -> None:
    text = with_journal(tmp_path, {"url": URL, "node": "ws-2", "password_file": "db.pass"})
    cfg = config.parse(text, "h.yaml", base=tmp_path)
    assert cfg.journal == JournalSettings(URL, "ws-2", Secret(tmp_path / "db.pass", None))
    credential = with_journal(tmp_path, {"url": URL, "password_credential": "journal-pw"})
    assert config.parse(credential, "h.yaml", base=tmp_path).journal == JournalSettings(
        URL, None, Secret(None, "journal-pw")
    )


def test_without_the_block_the_journal_stays_sqlite(tmp_path: Path) -> None:
    assert config.load(write_config(tmp_path)).journal is None


@pytest.mark.parametrize(
    "block",
    [
        {"node": "ws-2"},  # no url
        {"url": "mysql://db/hotfolder"},  # not PostgreSQL
        {"url": URL, "password_file": "/p", "password_credential": "c"},  # two sources
        {"url": URL, "node": "ws 2/evil"},  # not a node name
        {"url": URL, "passwd": "x"},  # unknown key
    ],
)
def test_a_wrong_journal_block_is_refused(tmp_path: Path, block: dict[str, str]) -> None:
    with pytest.raises(config.InvalidConfig) as err:
        config.parse(with_journal(tmp_path, block), "h.yaml", base=tmp_path)
    assert "journal" in str(err.value)


def test_the_example_documents_the_journal_block() -> None:
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "config" / "hotfolder.example.yaml").read_text()
    keys = ["journal", *schema.JOURNAL["properties"]]
    missing = [k for k in keys if not re.search(rf"(?<![\w-]){re.escape(k)}:(?=\s)", text)]
    assert missing == []


def test_a_shared_folder_s_id_leaves_out_the_inode_and_a_single_workstation_s_keeps_it() -> None:
    # Two NFS/SMB clients see one manifest with the server's size and mtime, but each may
    # number its inode its own way (SMB noserverino): a fleet must derive one id from it.
    on_a, on_b = FileIdentity(120, 7_000, 7_001, 11, 1), FileIdentity(120, 7_000, 7_002, 99, 2)
    rel = PurePosixPath("ep1/m.xml")
    assert submission_id("w", rel, on_a, shared=True) == submission_id("w", rel, on_b, shared=True)
    assert submission_id("w", rel, on_a) != submission_id("w", rel, on_b)  # ids already kept
    edited = FileIdentity(121, 7_000, 7_001, 11, 1)
    assert submission_id("w", rel, on_a, shared=True) != submission_id(
        "w", rel, edited, shared=True
    )


def test_a_portable_identity_is_the_same_file_on_another_client_but_not_an_edited_one() -> None:
    pinned = FileIdentity(120, 7_000, 7_001, 11, 1).portable()
    assert pinned.same_as(FileIdentity(120, 7_000, 9_999, 99, 2))  # another client's numbers
    assert not pinned.same_as(FileIdentity(121, 7_000, 7_001, 11, 1))  # grown
    assert not pinned.same_as(FileIdentity(120, 7_001, 7_001, 11, 1))  # touched
    assert not FileIdentity(120, 7_000, 7_001, 11, 1).same_as(
        FileIdentity(120, 7_000, 7_001, 12, 1)
    )
