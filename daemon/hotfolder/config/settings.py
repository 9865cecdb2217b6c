"""Load, validate and resolve the YAML config.

Validation reports *every* problem at once, each as `file:line: at 'key.path': message` plus a
hint, in steps (borgmatic's way): the YAML with its lines (yamlfile), units and the schema
(validation), then rules that span several keys (crosschecks). What comes out is typed:
these dataclasses, and sections.py for targets, notifications and accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotfolder.config import schema, sections
from hotfolder.config.crosschecks import cross_checks, resolve
from hotfolder.config.errors import ConfigError, InvalidConfig, KeyPath, format_path, line_of
from hotfolder.config.fleet import JournalSettings, journal
from hotfolder.config.schema import default
from hotfolder.config.sections import BacklotAccount, NotificationSettings, TargetSettings
from hotfolder.config.validation import UNIT_KEYS, read_units, schema_error, schema_errors
from hotfolder.config.yamlfile import read_yaml
from hotfolder.perms import SharedPermissions, parse_mode

# Callers import these from here, where they were before errors.py and validation.py.
__all__ = [
    "UNIT_KEYS",
    "Config",
    "ConfigError",
    "InvalidConfig",
    "KeyPath",
    "LoggingConfig",
    "TargetConfig",
    "WatchConfig",
    "format_path",
    "load",
    "parse",
]


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
    priority: int = default(schema.WATCH, "priority")  # 0-9, 9 starts first (issue 14)
    manifest_priority: str = default(schema.WATCH, "manifest_priority")  # ignored | allowed

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
    journal: JournalSettings | None = None  # a fleet's shared journal (PostgreSQL); else SQLite
    #: Where each key is in the file, for messages about it after loading (check-config).
    lines: dict[KeyPath, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, path: KeyPath) -> int | None:
        return line_of(path, self.lines)


def load(file: Path) -> Config:
    """Read, validate and resolve `file`; raise InvalidConfig listing every problem."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problem = ConfigError(str(file), None, (), f"cannot read config: {err}")
        raise InvalidConfig([problem]) from err
    return parse(text, str(file))


def parse(text: str, filename: str = "<config>", base: Path | None = None) -> Config:
    data, lines, yaml_errors = read_yaml(text, filename)
    if yaml_errors:
        raise InvalidConfig(yaml_errors)
    errors = list(read_units(data, filename, lines))
    errors += [schema_error(e, filename, lines) for e in schema_errors(data)]
    if not errors:
        errors = list(cross_checks(data, filename, lines, base or Path.cwd()))
    if errors:
        raise InvalidConfig(sorted(errors, key=lambda e: (e.line or 0, format_path(e.path))))
    return _build(data, Path(filename), base or Path.cwd(), lines)


# -- resolved config -------------------------------------------------------------------------


def _build(data: dict[str, Any], source: Path, base: Path, lines: dict[KeyPath, int]) -> Config:
    state_dir = resolve(data["state_dir"], base)
    log = data.get("logging") or {}
    watches = tuple(_build_watch(w, state_dir, base) for w in data["watches"])

    def here(value: str) -> Path:
        return resolve(value, base)

    targets = {
        name: TargetConfig(name, t["type"], _resolve_target(t, base), sections.target(t, here))
        for name, t in data["targets"].items()
    }
    return Config(
        source=source,
        state_dir=state_dir,
        logging=LoggingConfig(**log),
        workers=data.get("workers", default(schema.CONFIG, "workers")),
        shutdown_grace=float(data.get("shutdown_grace", default(schema.CONFIG, "shutdown_grace"))),
        backlot={
            name: sections.backlot_account(account, here)
            for name, account in (data.get("backlot") or {}).items()
        },
        notifications=sections.notifications(data.get("notifications"), here),
        min_free_bytes=int(data.get("min_free_bytes", default(schema.CONFIG, "min_free_bytes"))),
        watches=watches,
        targets=targets,
        http=_http(data.get("http"), base),
        editors=dict(data.get("editors") or {}),
        journal=journal(data.get("journal"), here),
        lines=lines,
    )


def _http(spec: dict[str, Any] | None, base: Path) -> HttpConfig | None:
    if spec is None:
        return None
    listen = spec.get("listen", default(schema.HTTP, "listen"))
    return HttpConfig(
        listen=(listen,) if isinstance(listen, str) else tuple(listen),
        users_file=resolve(spec["users_file"], base) if spec.get("users_file") else None,
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
        path=resolve(w["path"], base),
        target=w["target"],
        stability_seconds=float(get("stability_seconds")),
        after_success=get("after_success"),
        archive_dir=resolve(w.get("archive_dir") or str(state_dir / "archive" / name), base),
        failed_dir=resolve(w.get("failed_dir") or str(state_dir / "failed" / name), base),
        incomplete_after=float(get("incomplete_after")),
        rescan_seconds=float(get("rescan_seconds")),
        max_manifest_bytes=int(get("max_manifest_bytes")),
        ignore=tuple(get("ignore")),
        mode=get("mode"),
        poll_interval=float(get("poll_interval")),
        max_settle=float(get("max_settle")),
        permissions=_permissions(w.get("permissions")),
        priority=int(get("priority")),
        manifest_priority=get("manifest_priority"),
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
            options[key] = resolve(options[key], base)
    return options
