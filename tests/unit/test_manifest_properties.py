"""Property: whatever bytes arrive, parsing ends in a manifest or a reason, never a crash."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from hotfolder import grouping, manifest
from hotfolder.model import Manifest
from hotfolder.tracker import Failed, Ready, Waiting, WatchSettings, WatchTracker
from tests import manifests
from tests.fakes import FakeFileSystem

SEEDS = [
    manifests.ooyala().encode(),
    manifests.REMOTE_ASSET.encode(),
    manifests.BRIGHTCOVE.encode(),
    manifests.CSV_WITH_CAPTIONS.encode(),
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 64))]
        elif op == "insert":
            data[i:i] = draw(
                st.sampled_from(
                    [
                        b"<",
                        b"&",
                        b"]]>",
                        b'"',
                        b"\x00",
                        b"\xff\xfe",
                        b"<!DOCTYPE x>",
                        b"../",
                        b"&amp;",
                        b"<item>",
                        b"</channel>",
                        b",",
                        b"\n",
                        b'url="/etc/passwd"',
                    ]
                )
            )
        else:
            data[i:i] = data[i : i + draw(st.integers(1, 200))]
    name = draw(st.sampled_from(["m.xml", "m.csv", "m.rss"]))
    return bytes(data), name


def outcome(data: bytes, name: str) -> str:
    try:
        parsed = manifest.parse(data, name)
    except manifest.ManifestError as err:
        return "error" if err.code and err.message else "error without a reason"
    except manifest.NotAManifest:
        return "not-a-manifest"
    assert isinstance(parsed, Manifest)
    assert parsed.items
    plan = grouping.plan(PurePosixPath(name), parsed)
    for f in plan.files:
        assert ".." not in f.relpath.parts
        assert not f.relpath.is_absolute()
    for p in plan.problems:
        assert p.code
        assert p.message
    return "manifest"


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_mutated_manifests_end_in_a_manifest_or_a_reason(case: tuple[bytes, str]) -> None:
    assert outcome(*case) in {"error", "not-a-manifest", "manifest"}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["m.xml", "m.csv"]))
def test_random_bytes_end_in_a_manifest_or_a_reason(data: bytes, name: str) -> None:
    assert outcome(data, name) in {"error", "not-a-manifest", "manifest"}


@settings(max_examples=150, deadline=None)
@given(mutated())
def test_the_tracker_never_raises_on_hostile_manifests(case: tuple[bytes, str]) -> None:
    data, name = case
    fs = FakeFileSystem()
    root = Path("/drop")
    fs.write(root / name, data)
    for media in ("my_video.mov", "ep1.mp4", "bc_master.mp4"):
        fs.write(root / media, b"x")
    tracker = WatchTracker(WatchSettings("w", root, 1.0), fs)
    tracker.on_event(PurePosixPath(name), 0)
    decisions = tracker.check(0) + tracker.check(1, everything=True)
    for d in decisions:
        assert isinstance(d, Waiting | Ready | Failed)
        if isinstance(d, Failed):
            assert d.problems
            assert all(p.message for p in d.problems)
