from pathlib import PurePosixPath

import pytest

from hotfolder import grouping, manifest, rules
from tests import manifests


def plan_for(xml: str, where: str = "m.xml") -> grouping.Plan:
    return grouping.plan(PurePosixPath(where), manifest.parse(xml.encode(), where))


def test_files_are_relative_to_the_manifest_folder() -> None:
    p = plan_for(
        manifests.ooyala(manifests.ooyala_item("clips/a.mov", "a.jpg", None)), "show/m.xml"
    )
    assert not p.problems
    assert [(str(f.relpath), str(f.dest)) for f in p.files] == [
        ("show/clips/a.mov", "clips/a.mov"),
        ("show/a.jpg", "a.jpg"),
    ]


def test_urls_are_not_local_files() -> None:
    p = plan_for(
        manifests.ooyala(
            manifests.ooyala_item("https://cdn.example.com/a.mov", "http://x/t.jpg", None)
        )
    )
    assert p.files == ()
    assert not p.problems


def test_same_file_named_twice_is_sent_once() -> None:
    p = plan_for(
        manifests.ooyala(
            manifests.ooyala_item("a.mov", "t.jpg", None, guid="1"),
            manifests.ooyala_item("b.mov", "t.jpg", None, guid="2"),
        )
    )
    assert [str(f.relpath) for f in p.files] == ["a.mov", "t.jpg", "b.mov"]


@pytest.mark.parametrize(
    ("video", "code"),
    [
        ("/etc/passwd.mov", "absolute-path"),
        ("../outside.mov", "path-escapes"),
        ("clips/../../outside.mov", "path-escapes"),
        ("C:\\clips\\a.mov", "windows-path"),
        ("file:///etc/a.mov", "unsupported-url"),
        (" leading.mov", "bad-file-name"),
        ("rock&amp;roll.mov", "bad-file-name"),
        ("clip.ts", "unsupported-format"),
        ("m.xml", "unsupported-format"),
    ],
)
def test_bad_references_are_problems_with_reasons(video: str, code: str) -> None:
    p = plan_for(manifests.ooyala(manifests.ooyala_item(video, None, None)))
    assert code in {x.code for x in p.problems}
    assert all(x.hint for x in p.problems)
    assert all(str(f.relpath) != video for f in p.files)


def test_manifest_naming_itself() -> None:
    p = plan_for(manifests.ooyala(manifests.ooyala_item("a.mov", None, "m.xml")))
    assert "self-reference" in {x.code for x in p.problems}


def test_caption_language_must_be_known() -> None:
    p = plan_for(manifests.ooyala(manifests.ooyala_item("a.mov", None, "c.dfxp", lang="xx")))
    assert [x.code for x in p.problems] == ["bad-caption-language"]
    good = plan_for(manifests.ooyala(manifests.ooyala_item("a.mov", None, "c.vtt", lang="fr")))
    assert good.problems == ()


def test_one_caption_per_ooyala_item() -> None:
    item = manifests.ooyala_item("a.mov", None, "c.dfxp").replace(
        "<guid", '<media:subTitle href="d.srt" lang="de"/>\n<guid'
    )
    p = plan_for(manifests.ooyala(item))
    assert [x.code for x in p.problems] == ["too-many-captions"]


def test_brightcove_uri_unsafe_names() -> None:
    xml = manifests.BRIGHTCOVE.replace("bc_master.mp4", "my master (final).mp4")
    p = plan_for(xml)
    assert "bad-file-name" in {x.code for x in p.problems}
    assert plan_for(manifests.BRIGHTCOVE).problems == ()


def test_quota_fits_waits_or_never_fits() -> None:
    assert rules.quota(40, 50, 100) is True
    assert rules.quota(60, 50, 100) is False  # waits for what is in flight
    problem = rules.quota(101, 0, 100)
    assert not isinstance(problem, bool)
    assert problem.code == "over-quota"
