"""A manifest's own priority counts only where its watch allows it, and only upward."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hotfolder.config.settings import WatchConfig
from hotfolder.service.dispatcher import priority_of

WATCH = WatchConfig(
    name="w", path=Path("/drop"), target="t", stability_seconds=1.0, after_success="keep",
    archive_dir=Path("/a"), failed_dir=Path("/f"), incomplete_after=60.0, rescan_seconds=60.0,
    max_manifest_bytes=1000, ignore=(), priority=5,
)  # fmt: skip


def test_ignored_by_default() -> None:
    assert priority_of(WATCH, {"priority": 9}) == 5


def test_allowed_raises_but_never_lowers() -> None:
    allowed = replace(WATCH, manifest_priority="allowed")
    assert priority_of(allowed, {"priority": 9}) == 9
    assert priority_of(allowed, {"priority": 1}) == 5
    assert priority_of(allowed, {}) == 5
