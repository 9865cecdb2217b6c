"""What reading a manifest can end in besides a Manifest, shared by the XML and CSV readers."""

from __future__ import annotations

from hotfolder.report import excerpt


class ManifestError(Exception):
    """The file claims to be a manifest (or must be one) but cannot be used."""

    def __init__(self, code: str, message: str, hint: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.line = line


class NotAManifest(Exception):
    """The file is well-formed but is something else (a TTML caption, a sidecar XML)."""


def priority_of_text(text: str, line: int | None) -> int:
    """A manifest's own priority (issue 14): 0-9, used only where its watch allows it."""
    value = text.strip()
    if not (value.isascii() and value.isdigit() and 0 <= int(value) <= 9):
        raise ManifestError(
            "bad-priority",
            f"the manifest's priority '{excerpt(value, 20)}' is not a number from 0 to 9",
            "write a single digit, 9 for the most urgent, or leave the priority out",
            line,
        )
    return int(value)
