"""One bad manifest fails only itself: the daemon-level fuzz test of issue 16 item 7."""

from __future__ import annotations

import random
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.assemble import grouping
from hotfolder.config import settings as config
from hotfolder.model import FINAL, Manifest, State
from tests import manifests
from tests.helpers import running, wait_until, write_config

HOSTILE = (
    "http://[cdn.example.com/ep105.jpg",
    "http://x:99999/a.jpg",
    "\x00",
    "../../etc/passwd",
    "/etc/shadow",
    "a\nb.mov",
    "%ff%00.mov",
    "C:\\video.mov",
    "\u202e.vom",
    "x" * 5000,
    "<script>",
    "&amp;",
)


def mutated(rng: random.Random, seed_text: str) -> bytes:
    """A manifest an editor's broken tool, a truncated copy or an attacker could produce."""
    data = bytearray(seed_text.encode())
    how = rng.randrange(5)
    if how == 0:  # truncated mid-copy
        del data[rng.randrange(len(data)) :]
    elif how == 1:  # flipped bytes
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 2:  # a hostile value where a file name goes
        text = seed_text.replace("my_thumbnail.jpg", rng.choice(HOSTILE).replace('"', "&quot;"))
        data = bytearray(text.encode())
    elif how == 3:  # another encoding altogether
        data = bytearray(seed_text.encode(rng.choice(["utf-16", "utf-32", "latin-1"])))
    else:  # random bytes
        data = bytearray(rng.randbytes(rng.randrange(1, 400)))
    return bytes(data)


def drop_good(drop: Path) -> None:
    good = drop / "good"
    good.mkdir()
    (good / "v.mov").write_bytes(b"v" * 1000)
    (good / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("v.mov", None, None)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_and_mutated_manifests_beside_a_good_one(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    cfg = config.load(write_config(tmp_path, stability_seconds=0.3, incomplete_after=2))
    drop = tmp_path / "drop"
    seeds = [
        manifests.ooyala(),
        manifests.csv_manifest(["title", "video", "thumbnail"], ["T", "v.mov", "my_thumbnail.jpg"]),
        manifests.brightcove("bc.mp4", "my_thumbnail.jpg", "bc.vtt"),
    ]
    with running(cfg) as daemon:
        for i in range(30):
            name = f"bad{i}.{rng.choice(['xml', 'csv', 'mrss'])}"
            (drop / name).write_bytes(mutated(rng, rng.choice(seeds)))
        drop_good(drop)
        wait_until(
            lambda: daemon.journal.rows(frozenset({State.COMPLETE})),
            timeout=30,
            what="the good submission delivered",
        )
        # Every bad one ends (failed, or not a manifest at all): none keeps the watch busy.
        wait_until(
            lambda: not daemon.journal.rows(frozenset({State.PENDING})),
            timeout=30,
            what="no submission left pending",
        )
        (done,) = daemon.journal.rows(frozenset({State.COMPLETE}))
        assert done.manifest == "good/m.xml"
        assert all(r.state in FINAL for r in daemon.journal.rows())
    assert (tmp_path / "ingest" / "m.xml").exists()


def test_a_bug_met_by_one_manifest_fails_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever raises while one manifest is evaluated (here a planted bug) fails that
    submission with a report and never stops the watch."""
    real_plan = grouping.plan

    def plan_with_a_bug(relpath: PurePosixPath, manifest: Manifest) -> grouping.Plan:
        if relpath.name == "trigger.xml":
            raise ValueError("Invalid IPv6 URL")  # what urlsplit raised on 'http://[cdn...'
        return real_plan(relpath, manifest)

    monkeypatch.setattr(grouping, "plan", plan_with_a_bug)
    cfg = config.load(write_config(tmp_path, stability_seconds=0.3))
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        (drop / "trigger.xml").write_text(manifests.ooyala())
        drop_good(drop)
        wait_until(lambda: daemon.journal.rows(frozenset({State.COMPLETE})), what="good one")
        failed = wait_until(
            lambda: daemon.journal.rows(frozenset({State.FAILED})),
            what="the buggy one failed alone",
        )
    assert failed[0].manifest == "trigger.xml"
    assert failed[0].error_code == "internal-error"
    report = (tmp_path / "failed" / failed[0].id / "REPORT.txt").read_text()
    assert "not in your drop" in report
