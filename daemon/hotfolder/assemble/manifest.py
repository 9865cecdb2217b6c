"""Read manifests: detect the format from the content, list what each item references.

Parsing is pure (bytes in, Manifest or ManifestError out) and never trusts its input: XML goes
through defusedxml (no entity expansion, no external entities, no DTD fetches), size is capped by
the caller, and any failure is a ManifestError with a line number an editor can find.
Formats: Ooyala MRSS XML and CSV (ingest-facts §3.2-3.3), Brightcove Video Cloud MRSS (§5).
Messages quote the file only in short, escaped excerpts (`report.excerpt`): a manifest may be
a symlink to a password file, and its first line must not end up in a report.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET  # only for types and the TreeBuilder; parsing is defused
from collections.abc import Callable
from dataclasses import replace

import defusedxml
from defusedxml import ElementTree as DefusedET

from hotfolder.assemble.manifest_csv import parse_csv as _parse_csv
from hotfolder.assemble.manifest_errors import ManifestError, NotAManifest, priority_of_text
from hotfolder.model import Manifest, ManifestFormat, ManifestItem, Reference, RefKind
from hotfolder.report import excerpt

MEDIA_NS = ("http://search.yahoo.com/mrss/", "https://search.yahoo.com/mrss/")
OOYALA_NS = ("http://www.ooyala.com/mrss/", "https://www.ooyala.com/mrss/")
BRIGHTCOVE_NS = ("https://www.brightcove.com/mrss/", "http://www.brightcove.com/mrss/")

#: File endings worth opening as a possible manifest.
CANDIDATE_SUFFIXES = frozenset({".xml", ".csv", ".mrss", ".rss"})
BRIGHTCOVE_MAX_ITEMS = 100

__all__ = ["CANDIDATE_SUFFIXES", "ManifestError", "NotAManifest", "parse"]

LineOf = Callable[[ET.Element], int | None]


def parse(data: bytes, name: str) -> Manifest:
    """Parse manifest bytes; raise ManifestError if unusable, NotAManifest if it is not one."""
    wide = _wide_encoding(data[:4])
    if wide is not None:
        _refuse_wide(data, name, *wide)
    text_start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if text_start == b"<":
        return _parse_xml(data)
    if name.lower().endswith(".csv"):
        return _parse_csv(data)
    if name.lower().endswith((".xml", ".mrss", ".rss")):
        raise ManifestError(
            "malformed-manifest",
            "the file does not start with an XML tag",
            "save it as XML (an <rss> document), or check it is the right file",
        )
    raise NotAManifest(name)


# -- UTF-16 and UTF-32 ------------------------------------------------------------------------
# Refused, not parsed (expat could read UTF-16): hotfolder sends the manifest unchanged, the
# ingest formats are documented in UTF-8 only, and a manifest we accept but the ingest server
# cannot read would fail there, silently, after the media went. Said at once, it is one re-save.

_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32", "utf-32"),  # before UTF-16 LE: it starts the same way
    (b"\x00\x00\xfe\xff", "UTF-32", "utf-32"),
    (b"\xff\xfe", "UTF-16", "utf-16"),
    (b"\xfe\xff", "UTF-16", "utf-16"),
)
_PRINTABLE_ASCII = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def _wide_encoding(head: bytes) -> tuple[str, str] | None:
    """(name, codec) if the file starts like UTF-16 or UTF-32: a BOM, or (XML's own rule of
    thumb, XML 1.0 appendix F) an ASCII character padded with NUL bytes."""
    for bom, label, codec in _BOMS:
        if head.startswith(bom):
            return label, codec
    if len(head) < 4:
        return None
    a, b, c, d = head
    if a in _PRINTABLE_ASCII and b == c == d == 0:
        return "UTF-32", "utf-32-le"
    if a == b == c == 0 and d in _PRINTABLE_ASCII:
        return "UTF-32", "utf-32-be"
    if a in _PRINTABLE_ASCII and c in _PRINTABLE_ASCII and b == d == 0:
        return "UTF-16", "utf-16-le"
    if b in _PRINTABLE_ASCII and d in _PRINTABLE_ASCII and a == c == 0:
        return "UTF-16", "utf-16-be"
    return None


def _refuse_wide(data: bytes, name: str, label: str, codec: str) -> None:
    """Raise the re-save refusal, or NotAManifest for a UTF-16 XML that is something else (a
    TTML caption, a sidecar): only a manifest needs to be UTF-8."""
    refusal = ManifestError(
        "bad-encoding",
        f"the manifest is {label}; save it as UTF-8",
        "in your editor use 'Save as' and choose the encoding UTF-8: the manifest is sent "
        "unchanged, and the ingest server is documented with UTF-8 manifests only",
    )
    text = data.decode(codec, errors="replace")
    if name.lower().endswith(".csv") or not text.lstrip("\ufeff \t\r\n").startswith("<"):
        if name.lower().endswith((".csv", ".xml", ".mrss", ".rss")):
            raise refusal
        raise NotAManifest(name)
    with contextlib.suppress(ManifestError):  # broken and UTF-16: saving as UTF-8 comes first
        _parse_xml(text)
    raise refusal


# -- XML -------------------------------------------------------------------------------------


class _LineRecorder(ET.TreeBuilder):
    """A TreeBuilder that remembers the line each element starts on (ElementTree forgets)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[int, int] = {}
        self.expat: object | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        element = super().start(tag, attrs)
        self.lines[id(element)] = getattr(self.expat, "CurrentLineNumber", 0)
        return element


def _parse_xml(data: bytes | str) -> Manifest:
    """Parse XML bytes (expat honours the declared encoding) or already-decoded text."""
    recorder = _LineRecorder()
    parser = DefusedET.DefusedXMLParser(target=recorder, forbid_dtd=True)
    recorder.expat = parser.parser
    try:
        parser.feed(data)
        root = parser.close()
    except ET.ParseError as err:
        at = err.position[0] if err.position else None
        raise ManifestError(
            "malformed-manifest",
            f"the XML is not well-formed: {excerpt(str(err), 120)}",
            "the file may be truncated or hand-edited; re-export it",
            at,
        ) from err
    except (
        defusedxml.DTDForbidden,
        defusedxml.EntitiesForbidden,
        defusedxml.ExternalReferenceForbidden,
    ) as err:
        raise ManifestError(
            "unsafe-manifest",
            f"the XML uses a DTD or entities ({excerpt(str(err))})",
            "manifests must be plain XML without <!DOCTYPE> or <!ENTITY>",
        ) from err
    except (UnicodeDecodeError, ValueError, LookupError) as err:
        raise ManifestError(
            "bad-encoding",
            f"the XML cannot be decoded: {excerpt(str(err), 120)}",
            "save the manifest as UTF-8",
        ) from err

    def line(el: ET.Element) -> int | None:
        return recorder.lines.get(id(el))

    if _local(root.tag) != "rss":
        raise NotAManifest(f"root element is <{excerpt(_local(root.tag))}>")
    channel = _child(root, "channel")
    if channel is None:
        raise ManifestError(
            "malformed-manifest",
            "<rss> has no <channel>",
            "put the <item> elements inside <rss><channel>",
            line(root),
        )
    items = [el for el in channel if _local(el.tag) == "item"]
    if not items:
        raise ManifestError(
            "empty-manifest",
            "the manifest has no <item>",
            "add one <item> per video",
            line(channel),
        )
    parsed = (
        _brightcove(items, line)
        if any(_child(item, "brightcove") is not None for item in items)
        else _ooyala(items, line)
    )
    element = _child(channel, "priority")  # <hf:priority> (any namespace) under <channel>
    if element is None:
        return parsed
    return replace(parsed, priority=priority_of_text(element.text or "", line(element)))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _child(el: ET.Element, local: str, ns: tuple[str, ...] | None = None) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == local and (ns is None or _ns(c.tag) in ns):
            return c
    return None


def _children(el: ET.Element, local: str, ns: tuple[str, ...] | None = None) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == local and (ns is None or _ns(c.tag) in ns)]


def _text(el: ET.Element | None) -> str | None:
    return el.text.strip() if el is not None and el.text and el.text.strip() else None


def _ooyala(items: list[ET.Element], line: LineOf) -> Manifest:
    parsed = []
    for index, item in enumerate(items):
        refs: list[Reference] = []
        content = _child(item, "content", MEDIA_NS)
        remote = _child(item, "remoteasset", OOYALA_NS)
        if content is not None:
            refs.append(_ref(RefKind.MEDIA, content, "url", index, line))
        elif remote is None:
            raise ManifestError(
                "missing-media",
                f"item {index + 1} has no <media:content url=...>",
                'every item needs <media:content url="file name"/> (or <ooyala:remoteasset>)',
                line(item),
            )
        for thumb in _children(item, "thumbnail", MEDIA_NS):
            refs.append(_ref(RefKind.THUMBNAIL, thumb, "url", index, line))
        for sub in _children(item, "subTitle", MEDIA_NS):
            refs.append(_ref(RefKind.CAPTION, sub, "href", index, line, lang=sub.get("lang")))
        parsed.append(
            ManifestItem(
                title=_text(_child(item, "title", MEDIA_NS)),
                guid=_text(_child(item, "guid")),
                references=tuple(refs),
                remote_url=remote.get("url") if remote is not None else None,
            )
        )
    return Manifest(ManifestFormat.OOYALA_MRSS, tuple(parsed))


def _brightcove(items: list[ET.Element], line: LineOf) -> Manifest:
    if len(items) > BRIGHTCOVE_MAX_ITEMS:
        raise ManifestError(
            "too-many-items",
            f"{len(items)} videos in one Brightcove manifest (limit 100)",
            "split it into several manifests of at most 100 items",
            line(items[0]),
        )
    parsed = []
    for index, item in enumerate(items):
        bc = _child(item, "brightcove")
        if bc is None:
            raise ManifestError(
                "malformed-manifest",
                f"item {index + 1} has no <brightcove>",
                "wrap each item's tags in <brightcove>...</brightcove>",
                line(item),
            )
        refs: list[Reference] = []
        master = _child(bc, "master")
        if master is not None and master.get("url"):
            refs.append(_ref(RefKind.MEDIA, master, "url", index, line))
        images = _child(bc, "images")
        for image in _children(images, "image") if images is not None else []:
            refs.append(_ref(RefKind.THUMBNAIL, image, "url", index, line))
        tracks = _child(bc, "text_tracks")
        for track in _children(tracks, "text_track") if tracks is not None else []:
            refs.append(
                _ref(
                    RefKind.CAPTION,
                    track,
                    "url",
                    index,
                    line,
                    lang=track.get("srclang") or track.get("language"),
                )
            )
        parsed.append(
            ManifestItem(title=_text(_child(bc, "name")), guid=None, references=tuple(refs))
        )
    return Manifest(ManifestFormat.BRIGHTCOVE_MRSS, tuple(parsed))


def _ref(
    kind: RefKind, el: ET.Element, attr: str, item: int, line: LineOf, lang: str | None = None
) -> Reference:
    value = el.get(attr)
    if value is None or not value.strip():
        raise ManifestError(
            "missing-reference",
            f'item {item + 1}: <{excerpt(_local(el.tag))}> has no {attr}="..."',
            f'give the file name, e.g. {attr}="my_video.mov"',
            line(el),
        )
    return Reference(kind, value, item, line(el), lang)


# -- CSV -------------------------------------------------------------------------------------
