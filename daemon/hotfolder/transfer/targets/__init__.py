"""Transfer backends. Each target sends one session (a batch of files) at a time and can say,
after a crash, whether a session's files are provably at the destination."""

from __future__ import annotations

from pathlib import Path

from hotfolder.config.sections import LocalTargetSettings
from hotfolder.config.settings import TargetConfig
from hotfolder.transfer.link import Link
from hotfolder.transfer.targets.ascp import AscpSettings, AscpTarget
from hotfolder.transfer.targets.base import (
    Fault,
    Session,
    SharedEvidence,
    Target,
    TransferError,
)
from hotfolder.transfer.targets.local import LocalTarget

__all__ = ["Fault", "Session", "SharedEvidence", "Target", "TransferError", "build"]


def build(
    config: TargetConfig,
    state_dir: Path,
    link: Link | None = None,
    shared: SharedEvidence | None = None,
) -> Target:
    """`shared`: a fleet's evidence store (the manifest sessions' markers and receipts)."""
    typed = config.settings
    if isinstance(typed, LocalTargetSettings):
        receipts = state_dir / "receipts" / config.name
        return LocalTarget(config.name, typed.path, receipts, shared)
    work_dir = state_dir / "ascp" / config.name
    return AscpTarget(AscpSettings.of(config.name, typed, work_dir), link, shared=shared)
