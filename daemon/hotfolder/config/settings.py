"""Load, validate and resolve the YAML config.

Validation reports *every* problem at once, each as `file:line: at 'key.path': message` plus a
hint, in two steps (borgmatic's way): the schema first, then rules that span several keys.
"""

from __future__ import annotations

import difflib
import grp
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hotfolder import units
from hotfolder.config import schema, sections
from hotfolder.config.schema import default
from hotfolder.config.sections import BacklotAccount, NotificationSettings, TargetSettings
from hotfolder.perms import SharedPermissions, parse_mode

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ConfigError:
    file: str
    line: int | None
    path: KeyPath
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" at '{format_path(self.path)}':" if self.path else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{where}:{key} {self.message}{hint}"


class InvalidConfig(Exception):
    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    target: str = default(schema.LOGGING, "target")
    level: str = default(schema.LOGGING, "level")


@dataclass(frozen=True, slots=True)
class WatchConfig:
    name: str
    path: Path
    target: str
    stability_seconds: float
    after_success: str
    archive_dir: Path
    failed_dir: Path
    incomplete_after: float
    rescan_seconds: float
    max_manifest_bytes: int
    ignore: tuple[str, ...]
    mode: str = default(schema.WATCH, "mode")
    poll_interval: float = default(schema.WATCH, "poll_interval")
    max_settle: float = default(schema.WATCH, "max_settle")
    permissions: SharedPermissions | None = None  # failed/ and archive/ for the editors

    @property
    def own_folders(self) -> tuple[Path, ...]:
        """Our archive and failed folders when they live inside the watch folder: never
        watched, scanned or polled, or sent files would come back as drops."""
        return tuple(p for p in (self.archive_dir, self.failed_dir) if self.path in p.parents)


@dataclass(frozen=True, slots=True)
class TargetConfig:
    name: str
    type: str
    options: dict[str, Any]  # the raw keys: on their way out, read `settings` instead
    settings: TargetSettings  # typed, with the schema's defaults


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The web window (`hotfolder.window`); absent from the config: off."""

    listen: tuple[str, ...]
    users_file: Path | None = None
    users_credential: str | None = None
    read_requires_login: bool = False
    public_url: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    source: Path
    state_dir: Path
    logging: LoggingConfig
    workers: int
    watches: tuple[WatchConfig, ...]
    targets: dict[str, TargetConfig]
    shutdown_grace: float = default(schema.CONFIG, "shutdown_grace")
    backlot: dict[str, BacklotAccount] = field(default_factory=dict)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    min_free_bytes: int = default(schema.CONFIG, "min_free_bytes")
    http: HttpConfig | None = None
    editors: dict[str, str] = field(default_factory=dict)  # user name -> e-mail address
    #: Where each key is in the file, for messages about it after loading (check-config).
    lines: dict[KeyPath, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, path: KeyPath) -> int | None:
        return _line_of(path, self.lines)


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load(file: Path) -> Config:
    """Read, validate and resolve `file`; raise InvalidConfig listing every problem."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problem = ConfigError(str(file), None, (), f"cannot read config: {err}")
        raise InvalidConfig([problem]) from err
    return parse(text, str(file))


def parse(text: str, filename: str = "<config>", base: Path | None = None) -> Config:
    data, lines, yaml_errors = _read_yaml(text, filename)
    if yaml_errors:
        raise InvalidConfig(yaml_errors)
    errors = list(_read_units(data, filename, lines))
    errors += [_schema_error(e, filename, lines) for e in _schema_errors(data)]
    if not errors:
        errors = list(_cross_checks(data, filename, lines, base or Path.cwd()))
    if errors:
        raise InvalidConfig(sorted(errors, key=lambda e: (e.line or 0, format_path(e.path))))
    return _build(data, Path(filename), base or Path.cwd(), lines)


# -- YAML with line numbers ------------------------------------------------------------------


def _read_yaml(text: str, filename: str) -> tuple[Any, dict[KeyPath, int], list[ConfigError]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        return (
            None,
            {},
            [
                ConfigError(
                    filename,
                    line,
                    (),
                    f"not valid YAML: {problem}",
                    "check indentation and quoting on that line",
                )
            ],
        )
    if node is None:
        return {}, {}, []
    lines: dict[KeyPath, int] = {}
    duplicates = list(_index_lines(node, (), lines, filename))
    return data, lines, duplicates


def _index_lines(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], filename: str
) -> Iterator[ConfigError]:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield ConfigError(
                    filename,
                    key_node.start_mark.line + 1,
                    (*path, key),
                    "key given twice",
                    "keep one; YAML silently uses the last",
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            yield from _index_lines(value_node, (*path, key), lines, filename)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _index_lines(item, (*path, i), lines, filename)


def _line_of(path: KeyPath, lines: dict[KeyPath, int]) -> int | None:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


# -- step 0: human units (5s, 24h, 100GB, 100Mbps) ---------------------------------------------


def _unit_keys(node: Any) -> dict[str, units.Unit]:
    """Every key the schema marks with a unit, wherever it sits (the names are unique)."""
    found: dict[str, units.Unit] = {}
    if isinstance(node, dict):
        for key, sub in node.get("properties", {}).items():
            if isinstance(sub, dict) and "unit" in sub:
                found[key] = units.Unit(sub["unit"])
        for sub in node.values():
            found.update(_unit_keys(sub))
    elif isinstance(node, list):
        for sub in node:
            found.update(_unit_keys(sub))
    return found


UNIT_KEYS = _unit_keys(schema.CONFIG)


def _read_units(data: Any, filename: str, lines: dict[KeyPath, int]) -> Iterator[ConfigError]:
    """Replace, in place, each unit value with the number (or ascp rate) the code uses; a
    value that cannot be read is an error in plain words and leaves the key out, so the
    schema does not report it a second time."""
    if not isinstance(data, dict):
        return
    places: list[tuple[KeyPath, Any]] = [((), data)]
    watches = data.get("watches")
    if isinstance(watches, list):
        places += [(("watches", i), w) for i, w in enumerate(watches)]
    targets = data.get("targets")
    if isinstance(targets, dict):
        places += [(("targets", name), t) for name, t in targets.items()]
    for path, block in places:
        if not isinstance(block, dict):
            continue
        for key in [k for k in block if k in UNIT_KEYS]:
            value = block[key]
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                continue  # the schema says what type it wants
            try:
                block[key] = units.parse(UNIT_KEYS[key], value)
            except units.UnitError as err:
                del block[key]
                where = (*path, key)
                yield ConfigError(filename, _line_of(where, lines), where, str(err))


# -- step 1: the schema ----------------------------------------------------------------------


def _schema_errors(data: Any) -> Iterator[jsonschema.ValidationError]:
    validator = jsonschema.Draft202012Validator(schema.CONFIG)
    for error in validator.iter_errors(data):
        if error.validator in ("allOf", "if"):
            continue  # their sub-errors are reported on their own
        yield error


def _schema_error(
    error: jsonschema.ValidationError, filename: str, lines: dict[KeyPath, int]
) -> ConfigError:
    path: KeyPath = tuple(error.absolute_path)
    message, hint = _explain(error)
    if error.validator == "additionalProperties":
        extra = _unexpected_keys(error)
        if extra:
            path = (*path, extra[0])
    return ConfigError(filename, _line_of(path, lines), path, message, hint)


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
    instance = error.instance if isinstance(error.instance, dict) else {}
    return sorted(k for k in instance if k not in allowed)


def _explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    kind = error.validator
    sch = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties":
        allowed = sorted(sch.get("properties", {}))
        extra = _unexpected_keys(error)
        close = difflib.get_close_matches(extra[0], allowed, n=1) if extra else []
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(allowed)}"
        return f"unknown key '{', '.join(extra)}'", hint
    options: Any = error.validator_value
    if kind == "oneOf" and all(set(s) == {"required"} for s in options):
        keys = [s["required"][0] for s in options]
        return (
            f"give exactly one of {', '.join(keys)}",
            "the password (a file or a systemd credential) or an SSH key",
        )
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return f"missing required key '{missing}'", _describe(sch, missing)
    if kind == "type":
        wanted = error.validator_value
        return (
            f"expected {_a(wanted)}, got {_a(_json_type(error.instance))} ({error.instance!r})",
            _example_hint(error),
        )
    if kind in ("enum", "const"):
        value: Any = error.validator_value
        choices = value if kind == "enum" else [value]
        return (
            f"{error.instance!r} is not one of {', '.join(map(str, choices))}",
            _example_hint(error),
        )
    if kind in (
        "minimum",
        "exclusiveMinimum",
        "maximum",
        "minLength",
        "minItems",
        "minProperties",
        "pattern",
    ):
        return f"{error.instance!r} is not allowed: {error.message}", _example_hint(error)
    return error.message, _example_hint(error)


def _describe(sch: dict[str, Any], key: str) -> str:
    prop = sch.get("properties", {}).get(key, {})
    desc = prop.get("description", "")
    example = prop.get("example")
    return f"{desc} Example: {key}: {example}" if example is not None else desc


def _example_hint(error: jsonschema.ValidationError) -> str:
    sch = error.schema if isinstance(error.schema, dict) else {}
    example = sch.get("example")
    desc = sch.get("description", "")
    return f"{desc} Example: {example!r}".strip() if example is not None else desc


def _json_type(value: Any) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _a(word: Any) -> str:
    word = "/".join(word) if isinstance(word, list) else str(word)
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


# -- step 2: rules across keys ---------------------------------------------------------------


def _cross_checks(
    data: dict[str, Any], filename: str, lines: dict[KeyPath, int], base: Path
) -> Iterator[ConfigError]:
    def err(path: KeyPath, message: str, hint: str = "") -> ConfigError:
        return ConfigError(filename, _line_of(path, lines), path, message, hint)

    targets = data["targets"]
    state_dir = _resolve(data["state_dir"], base)
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
        path = _resolve(watch["path"], base)
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
            dest = _real(_resolve(target["path"], base))
            for i, watch in enumerate(data["watches"]):
                wpath = _real(_resolve(watch["path"], base))
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
            given = _resolve(watch[key], base) if watch.get(key) else unset[key]
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
        folder = _real(_resolve(watch[key], base)) if watch.get(key) else real_state
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


def _resolve(value: str, base: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


# -- resolved config -------------------------------------------------------------------------


def _build(data: dict[str, Any], source: Path, base: Path, lines: dict[KeyPath, int]) -> Config:
    state_dir = _resolve(data["state_dir"], base)
    log = data.get("logging") or {}
    watches = tuple(_build_watch(w, state_dir, base) for w in data["watches"])
    def resolve(value: str) -> Path:
        return _resolve(value, base)

    targets = {
        name: TargetConfig(name, t["type"], _resolve_target(t, base), sections.target(t, resolve))
        for name, t in data["targets"].items()
    }
    return Config(
        source=source,
        state_dir=state_dir,
        logging=LoggingConfig(**log),
        workers=data.get("workers", default(schema.CONFIG, "workers")),
        shutdown_grace=float(data.get("shutdown_grace", default(schema.CONFIG, "shutdown_grace"))),
        backlot={
            name: sections.backlot_account(account, resolve)
            for name, account in (data.get("backlot") or {}).items()
        },
        notifications=sections.notifications(data.get("notifications"), resolve),
        min_free_bytes=int(data.get("min_free_bytes", default(schema.CONFIG, "min_free_bytes"))),
        watches=watches,
        targets=targets,
        http=_http(data.get("http"), base),
        editors=dict(data.get("editors") or {}),
        lines=lines,
    )


def _http(spec: dict[str, Any] | None, base: Path) -> HttpConfig | None:
    if spec is None:
        return None
    listen = spec.get("listen", default(schema.HTTP, "listen"))
    return HttpConfig(
        listen=(listen,) if isinstance(listen, str) else tuple(listen),
        users_file=_resolve(spec["users_file"], base) if spec.get("users_file") else None,
        users_credential=spec.get("users_credential"),
        read_requires_login=bool(spec.get("read_requires_login", False)),
        public_url=spec.get("public_url"),
    )


def _build_watch(w: dict[str, Any], state_dir: Path, base: Path) -> WatchConfig:
    def get(key: str) -> Any:
        return w.get(key, default(schema.WATCH, key))

    name = w["name"]
    return WatchConfig(
        name=name,
        path=_resolve(w["path"], base),
        target=w["target"],
        stability_seconds=float(get("stability_seconds")),
        after_success=get("after_success"),
        archive_dir=_resolve(w.get("archive_dir") or str(state_dir / "archive" / name), base),
        failed_dir=_resolve(w.get("failed_dir") or str(state_dir / "failed" / name), base),
        incomplete_after=float(get("incomplete_after")),
        rescan_seconds=float(get("rescan_seconds")),
        max_manifest_bytes=int(get("max_manifest_bytes")),
        ignore=tuple(get("ignore")),
        mode=get("mode"),
        poll_interval=float(get("poll_interval")),
        max_settle=float(get("max_settle")),
        permissions=_permissions(w.get("permissions")),
    )


def _permissions(spec: dict[str, Any] | None) -> SharedPermissions | None:
    if spec is None:
        return None
    return SharedPermissions(
        folder_mode=parse_mode(spec.get("folder_mode", default(schema.PERMISSIONS, "folder_mode"))),
        file_mode=parse_mode(spec.get("file_mode", default(schema.PERMISSIONS, "file_mode"))),
        group=spec.get("group"),
    )


def _resolve_target(t: dict[str, Any], base: Path) -> dict[str, Any]:
    options = {k: v for k, v in t.items() if k != "type"}
    for key in ("path", "password_file", "key_file"):
        if key in options:
            options[key] = _resolve(options[key], base)
    return options
