from pathlib import PurePosixPath

import pytest

from hotfolder.assemble import grouping, manifest, rules
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


# -- inputs nobody planned for (issue 16, items 2, 7 and 15) -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[cdn.example.com/ep105.jpg",  # urlsplit: Invalid IPv6 URL
        "http://x:99999/t.jpg",  # port out of range
        "https://cdn.example.com:port/t.jpg",  # port not a number
        "http://\uff03x/t.jpg",  # netloc that NFKC-normalises to a separator
        "http:///t.jpg",  # no host
    ],
)
def test_a_malformed_url_is_a_problem_not_an_exception(url: str) -> None:
    p = plan_for(manifests.ooyala(manifests.ooyala_item("ep105.mov", url, None)))
    (problem,) = p.problems
    assert problem.code == "bad-url"
    assert "is not a valid URL" in problem.message
    assert problem.path == url
    assert [str(f.relpath) for f in p.files] == ["ep105.mov"]  # the URL is not a local file


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ep1\n.mp4", "a file name with a line break cannot be sent; rename it"),
        ("ep1\r.mp4", "a file name with a line break cannot be sent; rename it"),
        ("clips\nold/ep1.mp4", "a file name with a line break cannot be sent; rename it"),
        ("ep1\x00.mp4", "NUL"),
        ("ep1\x1b[2J.mp4", "control character"),
    ],
)
def test_names_that_can_never_be_sent_are_refused_at_once(name: str, words: str) -> None:
    data = manifests.csv_manifest(["title", "video"], ["Ep 1", name])
    p = grouping.plan(PurePosixPath("m.csv"), manifest.parse(data.encode(), "m.csv"))
    assert "unsendable-name" in {x.code for x in p.problems}
    (refusal,) = (x for x in p.problems if x.code == "unsendable-name")
    assert words in refusal.message
    assert "permission" not in refusal.message + refusal.hint
    assert p.files == ()


def test_messages_quote_names_escaped_and_short() -> None:
    name = "\x1b]0;owned\x07" + "x" * 5000 + "\x00.ts"
    data = manifests.csv_manifest(["title", "video"], ["Ep 1", name])
    p = grouping.plan(PurePosixPath("m.csv"), manifest.parse(data.encode(), "m.csv"))
    assert {x.code for x in p.problems} >= {"unsendable-name", "unsupported-format"}
    for problem in p.problems:
        assert problem.message.isprintable(), problem.message
        assert "\\e]0;owned\\x07" in problem.message
        assert len(problem.message) < 200


def test_a_name_in_another_unicode_normalisation_is_found() -> None:
    composed, decomposed = "\u00e9t\u00e9.mp4", "e\u0301te\u0301.mp4"
    assert rules.normalisation_twin(composed, ["other.mp4", decomposed]) == decomposed
    assert rules.normalisation_twin(decomposed, [composed]) == composed
    assert rules.normalisation_twin(composed, [decomposed, composed]) is None  # there as written
    assert rules.normalisation_twin(composed, ["ete.mp4"]) is None  # a different name
    assert rules.normalisation_twin("\ufb01le.mp4", ["file.mp4"]) is None  # NFKC is too broad


def test_the_normalisation_problem_says_what_to_do() -> None:
    problem = rules.twin_problem("show/\u00e9.mp4", "e\u0301.mp4", line=3)
    assert problem.code == "name-encoding"
    assert problem.message.startswith("'show/\u00e9.mp4' exists as a differently encoded name")
    assert "decomposed" in problem.message
    assert problem.hint
    assert (problem.path, problem.line) == ("show/\u00e9.mp4", 3)


@pytest.mark.parametrize("video", ["../outside.mov", "/etc/a.mov", "a/../../b.mov", "."])
def test_grouping_refuses_escapes_even_if_a_rule_misses_one(
    video: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "check", lambda manifest: [])  # every rule blind
    p = plan_for(manifests.ooyala(manifests.ooyala_item(video, None, None)), "show/m.xml")
    assert p.files == ()
    assert [x.code for x in p.problems] == ["path-escapes"]


def test_the_manifests_own_path_can_be_checked_for_line_breaks() -> None:
    problem = rules.unsendable("show\nold/m.xml")
    assert problem is not None
    assert problem.code == "unsendable-name"
    assert "a file name with a line break cannot be sent; rename it" in problem.message
    assert rules.unsendable("show/m.xml") is None
