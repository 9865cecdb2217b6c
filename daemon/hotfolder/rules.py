"""Ingest rules checked before anything is uploaded (ingest-facts §3.4 and §5).

Pure functions over a parsed Manifest: each broken rule is a Problem an editor can act on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from hotfolder.model import Manifest, ManifestFormat, Problem, Reference, RefKind

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


def is_remote(name: str) -> bool:
    """A URL reference names something the ingest server fetches itself: nothing to upload."""
    return urlsplit(name.strip()).scheme.lower() in REMOTE_SCHEMES


def check(manifest: Manifest) -> list[Problem]:
    return [*_check_references(manifest), *_check_captions_per_item(manifest)]


def _check_references(manifest: Manifest) -> Iterator[Problem]:
    for ref in manifest.references:
        if is_remote(ref.name):
            continue
        yield from check_path_form(ref)
        name = PurePosixPath(ref.name.replace("\\", "/")).name
        yield from _check_name(ref, name, manifest.format)
        yield from _check_extension(ref, name)
        if ref.kind is RefKind.CAPTION and ref.lang is not None:
            yield from _check_lang(ref)


def check_path_form(ref: Reference) -> Iterator[Problem]:
    """The reference must name a file inside the drop folder, relative to the manifest."""
    name = ref.name
    scheme = urlsplit(name).scheme
    if scheme and len(scheme) > 1:
        yield _problem(
            ref,
            "unsupported-url",
            f"'{name}' is a {scheme}: URL",
            "use a file name next to the manifest, or an http(s) URL",
        )
    elif "\\" in name or (len(scheme) == 1):
        yield _problem(
            ref,
            "windows-path",
            f"'{name}' is a Windows path",
            "write the file name relative to the manifest, with / between folders",
        )
    elif name.startswith("/"):
        yield _problem(
            ref,
            "absolute-path",
            f"'{name}' is an absolute path",
            "write the file name relative to the manifest's folder",
        )
    elif ".." in PurePosixPath(name).parts:
        yield _problem(
            ref,
            "path-escapes",
            f"'{name}' points outside the drop folder",
            "put the file in the drop folder and name it without '..'",
        )


def _check_name(ref: Reference, name: str, fmt: ManifestFormat) -> Iterator[Problem]:
    if name[:1].isspace():
        yield _problem(
            ref,
            "bad-file-name",
            f"'{name}' starts with white space",
            "rename the file (and the manifest entry) without leading spaces",
        )
    if "&" in name:
        yield _problem(
            ref,
            "bad-file-name",
            f"'{name}' contains '&', which Aspera ingest refuses",
            "rename the file without '&' (e.g. 'and') and update the manifest",
        )
    if fmt is ManifestFormat.BRIGHTCOVE_MRSS:
        bad = sorted(set(name) & BRIGHTCOVE_UNSAFE - {"&"})
        if bad:
            yield _problem(
                ref,
                "bad-file-name",
                f"'{name}' contains {' '.join(repr(c) for c in bad)}, not URI-safe for Brightcove",
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
            f"'{name}' is not a supported {what} file (.{ext or '?'})",
            f"supported: {', '.join(sorted(allowed))}",
        )


def _check_lang(ref: Reference) -> Iterator[Problem]:
    if ref.lang not in CAPTION_LANGUAGES:
        yield _problem(
            ref,
            "bad-caption-language",
            f"caption language '{ref.lang}' is unknown",
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
