"""Ingest rules checked before anything is uploaded (ingest-facts §3.4 and §5).

Pure functions over a parsed Manifest: each broken rule is a Problem an editor can act on.
They never raise, whatever a manifest says: a name or URL nobody planned for is one more Problem.
Names are quoted in messages only as short, escaped excerpts (`report.excerpt`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from hotfolder.model import Manifest, ManifestFormat, Problem, Reference, RefKind
from hotfolder.report import excerpt

VIDEO_EXTENSIONS = frozenset(
    "wmv avi mov moov mpg mpeg m2t m2v vob flv mp4 mpg4 mkv asf m4v m2p 3gp 3g2 f4v mp3 m4a wma "
    "aac mxf wav gxf fcp dv aif pek cfa".split()
)
CAPTION_EXTENSIONS = frozenset({"dfxp", "ttml", "xml", "scc", "srt", "vtt"})
# The ingest docs do not list image types (ingest-facts §7); these are what players display.
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "bmp", "webp"})
EXTENSIONS = {
    RefKind.MEDIA: VIDEO_EXTENSIONS,
    RefKind.CAPTION: CAPTION_EXTENSIONS,
    RefKind.THUMBNAIL: IMAGE_EXTENSIONS,
}
CAPTION_LANGUAGES = frozenset(
    "ar ca zh-Hans zh-Hant cs da nl en fi fr de el he hi hu is id it jp ko ms no pl pt pa ro sr "
    "es sv ta th tr uk vi".split()
)
BRIGHTCOVE_UNSAFE = frozenset(" !@#$%^&*()?\\{}[]")
REMOTE_SCHEMES = frozenset({"http", "https", "ftp", "ftps"})
# RFC 3986's scheme, read by hand: urlsplit raises on some inputs ('http://[x', a netloc that
# NFKC-normalises to a separator), and one bad reference must never stop the whole watch.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# ascp's file lists are one name a line; a NUL cannot be in a file name at all.
_LINE_BREAKS = frozenset("\n\r")
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))


def scheme_of(name: str) -> str:
    """The URL scheme `name` starts with, lower-cased, or '' (never raises)."""
    match = _SCHEME.match(name.strip())
    return match.group(1).lower() if match else ""


def is_remote(name: str) -> bool:
    """A URL reference names something the ingest server fetches itself: nothing to upload.
    Malformed URLs count as remote too (never a local file); `check` refuses them."""
    return scheme_of(name) in REMOTE_SCHEMES


def url_error(url: str) -> str | None:
    """Why the ingest server could not fetch `url`, or None if it is a well-formed URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as err:
        return str(err)
    if not parts.hostname:
        return "it names no host"
    return "port 0 is not a port" if port == 0 else None


def check(manifest: Manifest) -> list[Problem]:
    return [*_check_references(manifest), *_check_captions_per_item(manifest)]


def _check_references(manifest: Manifest) -> Iterator[Problem]:
    for ref in manifest.references:
        if is_remote(ref.name):
            yield from _check_url(ref)
            continue
        yield from check_path_form(ref)
        yield from _check_sendable(ref)
        name = PurePosixPath(ref.name.replace("\\", "/")).name
        yield from _check_name(ref, name, manifest.format)
        yield from _check_extension(ref, name)
        if ref.kind is RefKind.CAPTION and ref.lang is not None:
            yield from _check_lang(ref)


def _check_url(ref: Reference) -> Iterator[Problem]:
    why = url_error(ref.name)
    if why is not None:
        yield _problem(
            ref,
            "bad-url",
            f"'{excerpt(ref.name)}' is not a valid URL ({excerpt(why)})",
            "correct the URL (scheme://host/path), or name a file next to the manifest",
        )


def _check_sendable(ref: Reference) -> Iterator[Problem]:
    problem = unsendable(ref.name, ref.line)
    if problem is not None:
        yield problem


def unsendable(path: str, line: int | None = None) -> Problem | None:
    """The Problem if `path` (a referenced file, or the manifest's own path) can never be sent,
    to refuse it before anything leaves rather than fail after the media went; else None."""
    chars = set(path)
    if chars & _LINE_BREAKS:
        message = f"'{excerpt(path)}': a file name with a line break cannot be sent; rename it"
        hint = "rename the file (and the manifest entry) on one line, without line breaks"
    elif "\x00" in chars:
        message = f"'{excerpt(path)}' contains a NUL character, which no file name can hold"
        hint = "correct the file name in the manifest"
    elif chars & _CONTROL:
        message = f"'{excerpt(path)}' contains a control character; it cannot be sent"
        hint = "rename the file (and the manifest entry) with printable characters only"
    else:
        return None
    return Problem("unsendable-name", message, hint, path=path, line=line)


def check_path_form(ref: Reference) -> Iterator[Problem]:
    """The reference must name a file inside the drop folder, relative to the manifest."""
    name = ref.name
    quoted = excerpt(name)
    scheme = scheme_of(name)
    if scheme and len(scheme) > 1:
        yield _problem(
            ref,
            "unsupported-url",
            f"'{quoted}' is a {excerpt(scheme, 20)}: URL",
            "use a file name next to the manifest, or an http(s) URL",
        )
    elif "\\" in name or (len(scheme) == 1):
        yield _problem(
            ref,
            "windows-path",
            f"'{quoted}' is a Windows path",
            "write the file name relative to the manifest, with / between folders",
        )
    elif name.startswith("/"):
        yield _problem(
            ref,
            "absolute-path",
            f"'{quoted}' is an absolute path",
            "write the file name relative to the manifest's folder",
        )
    elif ".." in PurePosixPath(name).parts:
        yield _problem(
            ref,
            "path-escapes",
            f"'{quoted}' points outside the drop folder",
            "put the file in the drop folder and name it without '..'",
        )


def _check_name(ref: Reference, name: str, fmt: ManifestFormat) -> Iterator[Problem]:
    quoted = excerpt(name)
    if name[:1].isspace():
        yield _problem(
            ref,
            "bad-file-name",
            f"'{quoted}' starts with white space",
            "rename the file (and the manifest entry) without leading spaces",
        )
    if "&" in name:
        yield _problem(
            ref,
            "bad-file-name",
            f"'{quoted}' contains '&', which Aspera ingest refuses",
            "rename the file without '&' (e.g. 'and') and update the manifest",
        )
    if fmt is ManifestFormat.BRIGHTCOVE_MRSS:
        bad = sorted(set(name) & BRIGHTCOVE_UNSAFE - {"&"})
        if bad:
            yield _problem(
                ref,
                "bad-file-name",
                f"'{quoted}' contains {' '.join(repr(c) for c in bad)}, "
                "not URI-safe for Brightcove",
                "use only letters, digits, '-', '_' and '.'",
            )


def _check_extension(ref: Reference, name: str) -> Iterator[Problem]:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = EXTENSIONS[ref.kind]
    if ext not in allowed:
        what = {
            RefKind.MEDIA: "video/audio",
            RefKind.CAPTION: "caption",
            RefKind.THUMBNAIL: "image",
        }[ref.kind]
        yield _problem(
            ref,
            "unsupported-format",
            f"'{excerpt(name)}' is not a supported {what} file (.{excerpt(ext, 12) or '?'})",
            f"supported: {', '.join(sorted(allowed))}",
        )


def _check_lang(ref: Reference) -> Iterator[Problem]:
    if ref.lang not in CAPTION_LANGUAGES:
        yield _problem(
            ref,
            "bad-caption-language",
            f"caption language '{excerpt(ref.lang or '', 20)}' is unknown",
            f"use one of: {', '.join(sorted(CAPTION_LANGUAGES))}",
        )


def _check_captions_per_item(manifest: Manifest) -> Iterator[Problem]:
    if manifest.format is not ManifestFormat.OOYALA_MRSS:
        return
    counts = Counter(r.item for r in manifest.references if r.kind is RefKind.CAPTION)
    for item, count in sorted(counts.items()):
        if count > 1:
            first = next(
                r for r in manifest.references if r.item == item and r.kind is RefKind.CAPTION
            )
            yield Problem(
                "too-many-captions",
                f"item {item + 1} has {count} <media:subTitle>",
                "Ooyala takes one caption file per item; drop the extra ones",
                line=first.line,
            )


def _problem(ref: Reference, code: str, message: str, hint: str) -> Problem:
    return Problem(code, message, hint, path=ref.name, line=ref.line)


def quota(total: int, in_flight: int, limit: int) -> Problem | bool:
    """True if the submission fits now, False if it must wait for what is in flight, or a
    Problem if it can never fit."""
    if total > limit:
        return Problem(
            "over-quota",
            f"the submission is {total:,} bytes, more than the account holds at once "
            f"({limit:,} bytes)",
            "split it into several smaller manifests",
        )
    return total + in_flight <= limit


def normalisation_twin(name: str, names_in_folder: Iterable[str]) -> str | None:
    """The name in the folder that is `name` spelled with other Unicode code points (composed
    'é' against 'e' + U+0301, as macOS writes names), or None if `name` is there exactly as
    written or has no such twin. Such a file never "arrives": refuse it at once."""
    key = unicodedata.normalize("NFC", name)
    twins = []
    for candidate in names_in_folder:
        if candidate == name:
            return None
        if unicodedata.normalize("NFC", candidate) == key:
            twins.append(candidate)
    return min(twins) if twins else None


def twin_problem(path: str, twin: str, line: int | None = None) -> Problem:
    """The Problem for a referenced `path` whose file exists only as `twin` (its last
    component), as found by `normalisation_twin`."""
    form = "decomposed (e + accent)" if unicodedata.is_normalized("NFD", twin) else "composed"
    return Problem(
        "name-encoding",
        f"'{excerpt(path)}' exists as a differently encoded name ('{excerpt(twin)}', "
        f"{form}); the ingest server would not find it",
        "retype the file's name, or the name in the manifest, so both use the same "
        "characters (copying from one to the other is enough)",
        path=path,
        line=line,
    )
