"""The Ooyala CSV manifest (ingest-facts §3.3): a header row naming the columns in any order,
then a row per video; unknown columns are kept as metadata."""

from __future__ import annotations

import csv
import io

from hotfolder.assemble.manifest_errors import ManifestError, priority_of_text
from hotfolder.model import Manifest, ManifestFormat, ManifestItem, Reference, RefKind
from hotfolder.report import excerpt

CSV_REFERENCES = {
    "video": RefKind.MEDIA,
    "thumbnail": RefKind.THUMBNAIL,
    "subtitle": RefKind.CAPTION,
}
CSV_KNOWN = frozenset(
    {
        *CSV_REFERENCES,
        "title",
        "description",
        "content_type",
        "hosted_at",
        "subtitle:lang",
        "subtitle:framerate",
        # hotfolder's own (issue 14). The manifest is sent as it is, and what the ingest server
        # makes of an extra column or element is UNCONFIRMED (ingest-facts §7): a watch must
        # allow manifest priorities (manifest_priority: allowed), so an admin opts in.
        "priority",
    }
)


def parse_csv(data: bytes) -> Manifest:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ManifestError(
            "bad-encoding",
            f"the CSV is not UTF-8 (byte {err.start})",
            "save the manifest as UTF-8 (with or without BOM)",
        ) from err
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []  # (line the row starts on, cells)
    start = 1
    try:
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as err:
        raise ManifestError(
            "malformed-manifest",
            f"the CSV cannot be read: {excerpt(str(err), 120)}",
            "check the quotes on that line",
            reader.line_num,
        ) from err
    if not rows:
        raise ManifestError(
            "empty-manifest", "the CSV is empty", "add a header row and a row per video"
        )
    header = [h.strip() for h in rows[0][1]]
    columns = {h.lower(): i for i, h in enumerate(header)}
    if "video" not in columns:
        # The first row is not quoted: if this "CSV" is a linked password file, that row is
        # the password. Name only what we recognise, and count the rest.
        known = [h.lower() for h in header if h.lower() in CSV_KNOWN]
        found = f"recognised: {', '.join(known)}" if known else "none of them a known column"
        raise ManifestError(
            "malformed-manifest",
            "the CSV has no 'video' column",
            f"its first row has {len(header)} cell(s), {found}; the first row must name the "
            "columns, and 'video' is required",
            1,
        )
    video_rows = [(line, row) for line, row in rows[1:] if any(cell.strip() for cell in row)]
    items = [_csv_item(i, row, columns, line) for i, (line, row) in enumerate(video_rows)]
    if not items:
        raise ManifestError(
            "empty-manifest", "the CSV has a header but no video rows", "add one row per video"
        )
    cells = [(line, row[columns["priority"]].strip()) for line, row in video_rows
             if "priority" in columns and columns["priority"] < len(row)]  # fmt: skip
    given = [priority_of_text(value, line) for line, value in cells if value]
    return Manifest(ManifestFormat.OOYALA_CSV, tuple(items), max(given) if given else None)


def _csv_item(index: int, row: list[str], columns: dict[str, int], line: int) -> ManifestItem:
    def cell(name: str) -> str | None:
        i = columns.get(name)
        return row[i].strip() or None if i is not None and i < len(row) else None

    refs = []
    is_remote = (cell("content_type") or "video").lower() == "remoteasset"
    for column, kind in CSV_REFERENCES.items():
        value = cell(column)
        if value and not (is_remote and kind is RefKind.MEDIA):
            lang = cell("subtitle:lang") if kind is RefKind.CAPTION else None
            refs.append(Reference(kind, value, index, line, lang))
    if cell("video") is None:
        raise ManifestError(
            "missing-media",
            f"row {index + 1} has an empty 'video' cell",
            "give the video's file name (or URL) in the 'video' column",
            line,
        )
    metadata = tuple(
        (name, value)
        for name in columns
        if name not in CSV_KNOWN and (value := cell(name)) is not None
    )
    return ManifestItem(
        title=cell("title"),
        guid=None,
        references=tuple(refs),
        remote_url=cell("video") if is_remote else None,
        metadata=metadata,
    )
