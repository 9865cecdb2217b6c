"""Checks before the daemon starts: each returns what is wrong and what to do about it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hotfolder.config import Config


@dataclass(frozen=True, slots=True)
class StartupProblem:
    message: str
    hint: str


def check(cfg: Config) -> list[StartupProblem]:
    return [*_state_dir(cfg), *_watches(cfg), *_targets(cfg)]


def _state_dir(cfg: Config) -> Iterator[StartupProblem]:
    yield from _creatable(cfg.state_dir, "state_dir")


def _watches(cfg: Config) -> Iterator[StartupProblem]:
    for w in cfg.watches:
        if not w.path.is_dir():
            yield StartupProblem(
                f"watch '{w.name}': folder {w.path} is missing", "create it or mount the share"
            )
        elif not os.access(w.path, os.R_OK | os.W_OK | os.X_OK):
            yield StartupProblem(
                f"watch '{w.name}': folder {w.path} is not readable and writable",
                "the daemon moves sent files out of it; grant this user read/write access",
            )
        for kind, folder in (("archive_dir", w.archive_dir), ("failed_dir", w.failed_dir)):
            if kind == "archive_dir" and w.after_success != "archive":
                continue
            yield from _creatable(folder, f"watch '{w.name}': {kind}")


def _targets(cfg: Config) -> Iterator[StartupProblem]:
    for t in cfg.targets.values():
        if t.type != "local":
            continue
        path: Path = t.options["path"]
        # Never create it: a missing destination is usually an unmounted share, and writing
        # into the empty mount point would hide the files from the real consumer.
        if not path.is_dir():
            yield StartupProblem(
                f"target '{t.name}': folder {path} is missing",
                "mount or create the destination folder",
            )
        elif not os.access(path, os.W_OK | os.X_OK):
            yield StartupProblem(
                f"target '{t.name}': folder {path} is not writable",
                "grant this user write access to the destination",
            )


def _creatable(folder: Path, what: str) -> Iterator[StartupProblem]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        yield StartupProblem(
            f"{what}: cannot create {folder}: {err.strerror}",
            "create it by hand or fix the permissions of its parent",
        )
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        yield StartupProblem(f"{what}: {folder} is not writable", "fix its permissions")
