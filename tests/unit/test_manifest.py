import pytest

from hotfolder.assemble import manifest
from hotfolder.model import ManifestFormat, RefKind
from tests import manifests


def test_ooyala_sample_lists_media_thumbnail_and_caption_with_lines() -> None:
    m = manifest.parse(manifests.ooyala().encode(), "m.xml")
    assert m.format is ManifestFormat.OOYALA_MRSS
    refs = {(r.kind, r.name) for r in m.references}
    assert refs == {
        (RefKind.MEDIA, "my_video.mov"),
        (RefKind.THUMBNAIL, "my_thumbnail.jpg"),
        (RefKind.CAPTION, "caption-1.dfxp"),
    }
    assert m.items[0].guid == "my_test_guid"
    caption = next(r for r in m.references if r.kind is RefKind.CAPTION)
    assert caption.lang == "en"
    assert caption.line == 9


def test_several_items() -> None:
    m = manifest.parse(
        manifests.ooyala(
            manifests.ooyala_item("a.mov", guid="a"),
            manifests.ooyala_item("b.mov", None, None, guid="b"),
        ).encode(),
        "m.xml",
    )
    assert [i.guid for i in m.items] == ["a", "b"]
    assert [r.item for r in m.references] == [0, 0, 0, 1]


def test_remote_asset_has_no_local_media() -> None:
    m = manifest.parse(manifests.REMOTE_ASSET.encode(), "remote.xml")
    assert m.items[0].remote_url == "http://example.com/stream.m3u8"
    assert [r.name for r in m.references] == ["http://example.com/thumb.jpg"]


def test_csv_with_captions_quoted_newlines_and_bom() -> None:
    data = b"\xef\xbb\xbf" + manifests.CSV_WITH_CAPTIONS.encode()
    m = manifest.parse(data, "batch.csv")
    assert m.format is ManifestFormat.OOYALA_CSV
    assert [i.title for i in m.items] == ["Episode 1", "Episode 2"]
    assert {(r.kind, r.name, r.lang) for r in m.references if r.item == 0} == {
        (RefKind.MEDIA, "ep1.mp4", None),
        (RefKind.THUMBNAIL, "ep1.jpg", None),
        (RefKind.CAPTION, "ep1.srt", "en"),
    }
    assert [r.line for r in m.references if r.item == 1] == [4]  # row 1 spans lines 2-3


def test_brightcove_master_images_and_text_tracks() -> None:
    m = manifest.parse(manifests.BRIGHTCOVE.encode(), "bc.xml")
    assert m.format is ManifestFormat.BRIGHTCOVE_MRSS
    assert [(r.kind, r.name) for r in m.references] == [
        (RefKind.MEDIA, "bc_master.mp4"),
        (RefKind.THUMBNAIL, "bc_poster.jpg"),
        (RefKind.THUMBNAIL, "bc_thumb.png"),
        (RefKind.CAPTION, "bc_captions.vtt"),
    ]


def test_ttml_caption_is_not_a_manifest() -> None:
    with pytest.raises(manifest.NotAManifest):
        manifest.parse(b'<tt xmlns="http://www.w3.org/ns/ttml"><body/></tt>', "cap.xml")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (manifests.ooyala().encode()[:200], "malformed-manifest"),
        (b"<rss><channel></channel></rss>", "empty-manifest"),
        (b"<rss><item/></rss>", "malformed-manifest"),
        (
            b'<rss xmlns:media="http://search.yahoo.com/mrss/"><channel><item><media:title>x'
            b"</media:title></item></channel></rss>",
            "missing-media",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaa">]><rss>&a;</rss>',
            "unsafe-manifest",
        ),
        (
            b'<?xml version="1.0" encoding="UTF-8"?><rss><channel>\xff\xfe</channel></rss>',
            "malformed-manifest",
        ),
        (b"not xml at all", "malformed-manifest"),
    ],
)
def test_broken_xml_is_a_manifest_error_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(data, "broken.xml")
    assert err.value.code == code
    assert err.value.hint


def test_billion_laughs_is_refused_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<rss>&lol2;</rss>"
    )
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(bomb, "bomb.xml")
    assert err.value.code == "unsafe-manifest"


def test_csv_without_video_column() -> None:
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(b"title,file\nx,y.mp4\n", "m.csv")
    assert "'video' column" in err.value.message


def test_csv_not_utf8() -> None:
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse("video,title\nclip.mp4,Caf\u00e9\n".encode("latin-1"), "m.csv")
    assert err.value.code == "bad-encoding"


def test_csv_keeps_unknown_columns_as_metadata() -> None:
    m = manifest.parse(manifests.CSV_WITH_CAPTIONS.encode(), "batch.csv")
    assert m.items[0].metadata == (("season", "1"),)


def test_brightcove_limit_is_100_items() -> None:
    item = manifests.BRIGHTCOVE.split("<item>")[1].split("</item>")[0]
    head, tail = manifests.BRIGHTCOVE.split("<item>")[0], "</channel></rss>"
    ok = head + f"<item>{item}</item>" * 100 + tail
    assert len(manifest.parse(ok.encode(), "bc.xml").items) == 100
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse((head + f"<item>{item}</item>" * 101 + tail).encode(), "bc.xml")
    assert err.value.code == "too-many-items"


@pytest.mark.parametrize(
    "secret_file",
    [
        b"Wr0ng-Pa55word-7f3a\n",
        b"root:$6$Wr0ng-Pa55word-7f3a:19000:0:99999:7:::\n",
        b"title,Wr0ng-Pa55word-7f3a\nx,y\n",
    ],
)
def test_a_csv_that_is_a_secret_is_refused_without_quoting_it(secret_file: bytes) -> None:
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(secret_file, "pw.csv")
    said = f"{err.value.message} {err.value.hint}"
    assert "'video' column" in said
    assert "Wr0ng-Pa55word-7f3a" not in said
    assert "Pa55" not in said  # not even a prefix of it


def test_a_csv_without_video_names_the_columns_it_recognised() -> None:
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(b"Title,Thumbnail,clip file\nx,y,z\n", "m.csv")
    assert "3 cell(s)" in err.value.hint
    assert "recognised: title, thumbnail" in err.value.hint
    assert "clip file" not in err.value.hint


@pytest.mark.parametrize(
    ("codec", "label"),
    [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-32", "UTF-32")],
)
def test_a_wide_manifest_is_refused_with_the_right_words(codec: str, label: str) -> None:
    for data, name in (
        (manifests.ooyala().encode(codec), "m.xml"),
        (manifests.CSV_WITH_CAPTIONS.encode(codec), "m.csv"),
    ):
        with pytest.raises(manifest.ManifestError) as err:
            manifest.parse(data, name)
        assert err.value.code == "bad-encoding"
        assert err.value.message == f"the manifest is {label}; save it as UTF-8"


def test_a_utf16_caption_is_not_a_manifest() -> None:
    ttml = '<?xml version="1.0" encoding="UTF-16"?><tt xmlns="http://www.w3.org/ns/ttml"/>'
    with pytest.raises(manifest.NotAManifest):
        manifest.parse(ttml.encode("utf-16"), "cap.xml")


def test_parse_errors_quote_the_file_escaped_and_short() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE ' + b"a" * 5000 + b' SYSTEM "x\ny"><rss/>'
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(bomb, "m.xml")
    assert err.value.message.isprintable()
    assert len(err.value.message) < 200


def test_a_manifest_may_say_its_own_priority() -> None:
    xml = manifests.ooyala().replace(
        "<channel>", '<channel><hf:priority xmlns:hf="urn:hotfolder">8</hf:priority>', 1
    )
    assert manifest.parse(xml.encode(), "m.xml").priority == 8
    assert manifest.parse(manifests.ooyala().encode(), "m.xml").priority is None
    csv_text = manifests.csv_manifest(["video", "priority"], ["a.mov", "3"], ["b.mov", "7"])
    assert manifest.parse(csv_text.encode(), "m.csv").priority == 7, "the highest row counts"
    bad = manifests.csv_manifest(["video", "priority"], ["a.mov", "urgent"])
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(bad.encode(), "m.csv")
    assert err.value.code == "bad-priority"
