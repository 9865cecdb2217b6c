"""Step 2 of validation: rules that span several keys (a watch's target exists, folders that
would feed the daemon its own output, permissions that the editors could not use)."""

from __future__ import annotations

import difflib
import grp
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotfolder.config import schema
from hotfolder.config.errors import ConfigError, KeyPath, line_of
from hotfolder.config.schema import default

# -- step 2: rules across keys ---------------------------------------------------------------


def cross_checks(
    data: dict[str, Any], filename: str, lines: dict[KeyPath, int], base: Path
) -> Iterator[ConfigError]:
    def err(path: KeyPath, message: str, hint: str = "") -> ConfigError:
        return ConfigError(filename, line_of(path, lines), path, message, hint)

    targets = data["targets"]
    state_dir = resolve(data["state_dir"], base)
    seen_names: dict[str, int] = {}
    for i, watch in enumerate(data["watches"]):
        name = watch["name"]
        if name in seen_names:
            yield err(
                (("watches", i, "name")),
                f"watch name '{name}' is used twice",
                f"watches[{seen_names[name]}] has it too; names must be unique",
            )
        seen_names.setdefault(name, i)
        if watch["target"] not in targets:
            close = difflib.get_close_matches(watch["target"], list(targets), n=1)
            yield err(
                ("watches", i, "target"),
                f"no target named '{watch['target']}'",
                f"did you mean '{close[0]}'?"
                if close
                else f"define it under 'targets:' (known: {', '.join(sorted(targets))})",
            )
        path = resolve(watch["path"], base)
        if not path.is_dir():
            yield err(
                ("watches", i, "path"),
                f"folder {path} does not exist or is not a folder",
                "create it, mount the share, or fix the path",
            )
        elif not os.access(path, os.R_OK | os.X_OK):
            yield err(
                ("watches", i, "path"),
                f"folder {path} is not readable by this user",
                "fix its permissions or run the daemon as a user who can read it",
            )
        if watch.get("permissions"):
            yield from _permission_checks(watch, i, state_dir, base, err)
    yield from _overlaps(data, state_dir, base, err)
    for name, target in targets.items():
        account = (target.get("verify") or {}).get("backlot")
        if account is not None and account not in (data.get("backlot") or {}):
            yield err(
                ("targets", name, "verify", "backlot"),
                f"no backlot account '{account}'",
                "define it under 'backlot:' with api_key and api_secret_file",
            )
        if target.get("type") == "local":
            dest = _real(resolve(target["path"], base))
            for i, watch in enumerate(data["watches"]):
                wpath = _real(resolve(watch["path"], base))
                if _is_within(dest, wpath) or _is_within(wpath, dest):
                    yield err(
                        ("targets", name, "path"),
                        f"target folder {dest} overlaps watch folder {wpath} (watches[{i}])",
                        "delivered files would be picked up again",
                    )


Err = Callable[[KeyPath, str, str], ConfigError]


@dataclass(frozen=True, slots=True)
class _Folder:
    """A folder the daemon reads from or writes into, as written and as it really is."""

    what: str  # "watch folder", "archive_dir", "failed_dir"
    watch: int
    key: KeyPath
    given: Path  # lexically resolved, as the scanner and the moves use it
    real: Path  # every symlink followed

    def __str__(self) -> str:
        shown = f"{self.what} {self.given}"
        return shown if self.given == self.real else f"{shown} (really {self.real})"


def _folders(data: dict[str, Any], state_dir: Path, base: Path) -> list[_Folder]:
    found = []
    for i, watch in enumerate(data["watches"]):
        name = watch["name"]
        unset = {
            "archive_dir": state_dir / "archive" / name,
            "failed_dir": state_dir / "failed" / name,
        }
        keys = ["path", "failed_dir"]
        if watch.get("after_success", default(schema.WATCH, "after_success")) == "archive":
            keys.insert(1, "archive_dir")
        for key in keys:
            given = resolve(watch[key], base) if watch.get(key) else unset[key]
            what = "watch folder" if key == "path" else key
            found.append(_Folder(what, i, ("watches", i, key), given, _real(given)))
    return found


def _overlaps(data: dict[str, Any], state_dir: Path, base: Path, err: Err) -> Iterator[ConfigError]:
    """Folders that would feed the daemon its own output (an archive inside a drop folder,
    reached through a symlink: one submission sent 38 times in 20 s), or one folder claimed
    twice. Real paths, both ways round."""
    folders = _folders(data, state_dir, base)
    drops = [f for f in folders if f.what == "watch folder"]
    real_state = _real(state_dir)
    for a_index, a in enumerate(drops):
        for b in drops[a_index + 1 :]:
            if a.real == b.real:
                yield err(
                    b.key,
                    f"{b} is watched twice",
                    f"watches[{a.watch}] watches it already ({a.given}); one watch per folder",
                )
            elif _is_within(b.real, a.real) or _is_within(a.real, b.real):
                inner, outer = (b, a) if _is_within(b.real, a.real) else (a, b)
                yield err(
                    b.key,
                    f"{inner} (watches[{inner.watch}]) is inside {outer} (watches[{outer.watch}])",
                    "its drops would be claimed by both watches; use folders side by side",
                )
        if _is_within(real_state, a.real):
            yield err(
                ("state_dir",),
                f"state_dir {state_dir} is inside {a} (watches[{a.watch}])",
                "its files would be picked up as drops; move it elsewhere",
            )
        elif _is_within(a.real, real_state):
            yield err(
                a.key,
                f"{a} is inside state_dir {state_dir}",
                "state_dir is the daemon's private folder; drop folders go elsewhere",
            )
    for out in (f for f in folders if f.what != "watch folder"):
        for drop in drops:
            yield from _output_against_drop(out, drop, err)


def _output_against_drop(out: _Folder, drop: _Folder, err: Err) -> Iterator[ConfigError]:
    where = f"(watches[{drop.watch}])"
    if _is_within(drop.real, out.real):
        yield err(
            out.key,
            f"{drop} {where} is inside {out}" if drop.real != out.real else f"{out} is {drop}",
            f"what is moved into {out.what} would be picked up as a new drop and sent again; "
            "keep it outside every watch folder",
        )
        return
    if not _is_within(out.real, drop.real):
        return
    if out.watch != drop.watch:
        yield err(
            out.key,
            f"{out} is inside {drop} {where}",
            "that watch would pick up what is moved there and send it again; keep it "
            "outside every other watch folder",
        )
        return
    # Its own archive or failed folder inside its own drop folder is skipped by the scanner,
    # which walks the drop folder by the names written here: allowed only when those names
    # lead there with no symlink on the way.
    inside = drop.given in out.given.parents
    if not inside or drop.real / out.given.relative_to(drop.given) != out.real:
        yield err(
            out.key,
            f"{out} is inside {drop} through a symlink",
            f"the scanner would not know to skip it and would send what is moved there again; "
            f"write it as a real path under {drop.given}, or keep it outside the watch folder",
        )


def _permission_checks(
    watch: dict[str, Any], i: int, state_dir: Path, base: Path, err: Err
) -> Iterator[ConfigError]:
    group = watch["permissions"].get("group")
    if group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            yield err(
                ("watches", i, "permissions", "group"),
                f"no group named '{group}' on this machine",
                "create it (groupadd) and add the editors and the daemon's user to it",
            )
    real_state = _real(state_dir)
    keys = ["failed_dir"]
    if watch.get("after_success", default(schema.WATCH, "after_success")) == "archive":
        keys.append("archive_dir")
    for key in keys:
        folder = _real(resolve(watch[key], base)) if watch.get(key) else real_state
        if _is_within(folder, real_state):
            yield err(
                ("watches", i, key),
                f"{key} {folder} is inside the private state_dir {state_dir}, so `permissions` "
                "cannot let the editors reach it",
                f"set {key} to a folder the editors can reach, e.g. beside the drop folder",
            )


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _real(path: Path) -> Path:
    """Every symlink followed, in every component (the parts that do not exist yet kept)."""
    return Path(os.path.realpath(path))


def resolve(value: str, base: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return Path(os.path.normpath(path if path.is_absolute() else base / path))
