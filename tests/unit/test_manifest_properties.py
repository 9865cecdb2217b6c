"""Property: whatever bytes arrive, parsing ends in a manifest or a reason, never a crash."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from hotfolder.assemble import grouping, manifest
from hotfolder.assemble.tracker import Failed, Ready, Waiting, WatchSettings, WatchTracker
from hotfolder.model import Manifest
from tests import manifests
from tests.fakes import FakeFileSystem

#: Characters no planned file may carry: ascp's file lists are line-based, NUL ends a C string.
UNSENDABLE = frozenset("\n\r\x00")
#: A message quotes excerpts of names, never a whole hostile name.
MESSAGE_LIMIT = 400

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
    """Parse, check and plan as the tracker does; only the two documented exceptions may leave."""
    where = PurePosixPath(name)
    try:
        parsed = manifest.parse(data, where.name)
    except manifest.ManifestError as err:
        return "error" if err.code and err.message else "error without a reason"
    except manifest.NotAManifest:
        return "not-a-manifest"
    assert isinstance(parsed, Manifest)
    assert parsed.items
    plan = grouping.plan(where, parsed)
    for f in plan.files:
        assert ".." not in f.relpath.parts
        assert not f.relpath.is_absolute()
        assert f.relpath.is_relative_to(where.parent), f"{f.relpath} left {where.parent}"
        assert f.relpath != where
        assert not UNSENDABLE & set(str(f.relpath)), f"{f.relpath!r} cannot be sent"
    for p in plan.problems:
        assert p.code
        assert p.message
        assert p.message.isprintable(), f"unescaped text in {p.message!r}"
        assert len(p.message) <= MESSAGE_LIMIT, f"{len(p.message)} characters"
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


# -- hostile names in valid skeletons ----------------------------------------------------------
# Random bytes rarely get past the XML parser; these build manifests that parse and put the
# hostile text where the rules must judge it: a file name, a URL, a caption language.

HOSTILE_PIECES = [
    "[",
    "]",
    "%",
    "%2e%2e/",
    "%00",
    "..",
    "../",
    "/",
    "//",
    "\\",
    "C:",
    "\x00",
    "\n",
    "\r",
    "\t",
    "\x1b[31m",
    "\x7f",
    "\u202e",
    "\u2028",
    "\ufeff",
    "e\u0301",
    "\u00e9",
    "\ufb01",
    "\uff03",
    "\u2100",
    "\U0001f600",
    "&",
    " ",
    "?",
    "#",
    ":",
    "@",
]
URL_PREFIXES = [
    "",
    "",
    "",
    "http://",
    "https://",
    "HTTP://",
    "ftp://",
    "ftps://",
    "file://",
    "mailto:",
    "javascript:",
    "http://[",
    "http://[cdn.example.com/",
    "http://[::1]:0/",
    "http://x:99999/",
    "https://x:-1/",
    "http://",
    "//cdn.example.com/",
    "/",
    "../",
]
SUFFIXES = ["", ".mp4", ".mov", ".jpg", ".vtt", ".dfxp", ".xml", ".csv"]
LANGS = ["en", "fr", "", "xx", "\x00", "e\nn", "zh-Hans"]


# Strategies built once: building them inside each draw costs more than the checks themselves.
_PIECE = st.one_of(
    st.sampled_from(HOSTILE_PIECES),
    st.text(max_size=8),
    st.integers(200, 5000).map(lambda n: "x" * n),
    st.sampled_from(["clip", "ep105", "a/b", "show/ep1"]),
)
_PREFIX, _SUFFIX, _LANG = (st.sampled_from(x) for x in (URL_PREFIXES, SUFFIXES, LANGS))


@st.composite
def _hostile_name(draw: st.DrawFn) -> str:
    parts = [draw(_PREFIX), *draw(st.lists(_PIECE, min_size=1, max_size=6)), draw(_SUFFIX)]
    name = "".join(parts)
    return name if name.strip() else "x" + name


HOSTILE_NAME = _hostile_name()


def _nearly_valid(suffix: str) -> st.SearchStrategy[str]:
    """A name that breaks one thing only, so the rule for that thing must catch it: a name
    broken in three ways is refused by the first rule and tests nothing after it."""
    return st.builds(
        "{}{}{}{}".format,
        st.sampled_from(["", "", "clips/", "http://cdn.example.com/"]),
        st.sampled_from(["ep", "a b", "show/ep"]),
        st.sampled_from(HOSTILE_PIECES),
        st.just(suffix),
    )


VIDEO, IMAGE, CAPTION = (
    st.one_of(HOSTILE_NAME, _nearly_valid(suffix)) for suffix in (".mp4", ".jpg", ".vtt")
)


def _xml_attr(text: str) -> str:
    """Escape for a double-quoted attribute; line breaks and tabs as character references so
    they survive attribute normalisation. Other control characters stay raw: the parser must
    refuse them with a reason."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


MANIFEST_PLACES = ["m.xml", "show/m.xml", "a/b/m.xml"]


@st.composite
def hostile_ooyala(draw: st.DrawFn) -> tuple[bytes, str]:
    video, thumb, caption = (_xml_attr(draw(s)) for s in (VIDEO, IMAGE, CAPTION))
    lang = _xml_attr(draw(_LANG))
    item = manifests.ooyala_item(video, thumb, caption, lang=lang)
    if draw(st.booleans()):  # a remote asset instead of local media
        item = item.replace("<media:content", "<ooyala:remoteasset", 1)
    data = manifests.ooyala(item).encode("utf-8", "surrogatepass")
    return data, draw(st.sampled_from(MANIFEST_PLACES))


@st.composite
def hostile_brightcove(draw: st.DrawFn) -> tuple[bytes, str]:
    master, image, track = (_xml_attr(draw(s)) for s in (VIDEO, IMAGE, CAPTION))
    lang = _xml_attr(draw(_LANG))
    data = manifests.brightcove(master, image, track, srclang=lang).encode("utf-8", "surrogatepass")
    return data, draw(st.sampled_from(MANIFEST_PLACES))


CSV_HEADER = ["title", "video", "thumbnail", "subtitle", "subtitle:lang", "content_type"]


@st.composite
def hostile_csv(draw: st.DrawFn) -> tuple[bytes, str]:
    rows = []
    for _ in range(draw(st.integers(1, 2))):
        video, thumb, sub = (draw(s) for s in (VIDEO, IMAGE, CAPTION))
        lang = draw(_LANG)
        kind = draw(st.sampled_from(["", "video", "remoteasset"]))
        rows.append(["Title", video, thumb, sub, lang, kind])
    header = list(CSV_HEADER)
    if draw(st.integers(0, 9)) == 0:  # now and then a hostile header instead of 'video'
        header[1] = draw(HOSTILE_NAME)
    data = manifests.csv_manifest(header, *rows).encode("utf-8", "surrogatepass")
    place = draw(st.sampled_from(MANIFEST_PLACES)).replace(".xml", ".csv")
    return data, place


HOSTILE = settings(max_examples=400, deadline=None)


@HOSTILE
@given(hostile_ooyala())
def test_hostile_names_in_ooyala_mrss_end_in_a_plan_or_a_reason(case: tuple[bytes, str]) -> None:
    assert outcome(*case) in {"error", "manifest"}


@HOSTILE
@given(hostile_brightcove())
def test_hostile_names_in_brightcove_end_in_a_plan_or_a_reason(case: tuple[bytes, str]) -> None:
    assert outcome(*case) in {"error", "manifest"}


@HOSTILE
@given(hostile_csv())
def test_hostile_names_in_csv_end_in_a_plan_or_a_reason(case: tuple[bytes, str]) -> None:
    assert outcome(*case) in {"error", "manifest"}
