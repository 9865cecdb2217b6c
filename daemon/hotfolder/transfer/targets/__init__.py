"""Transfer backends. Each target sends one session (a batch of files) at a time and can say,
after a crash, whether a session's files are provably at the destination."""

from __future__ import annotations

from pathlib import Path

from hotfolder.config.settings import TargetConfig
from hotfolder.transfer.targets.ascp import AscpSettings, AscpTarget
from hotfolder.transfer.targets.base import Fault, Session, Target, TransferError
from hotfolder.transfer.targets.local import LocalTarget

__all__ = ["Fault", "Session", "Target", "TransferError", "build"]


def build(config: TargetConfig, state_dir: Path) -> Target:
    if config.type == "local":
        return LocalTarget(
            config.name, config.options["path"], state_dir / "receipts" / config.name
        )
    if config.type == "ascp":
        work_dir = state_dir / "ascp" / config.name
        return AscpTarget(AscpSettings.from_options(config.name, config.options, work_dir))
    raise ValueError(f"unknown target type {config.type!r}")  # the schema makes this unreachable
