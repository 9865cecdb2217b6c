"""Checks before the daemon starts: each returns what is wrong and what to do about it.

Two kinds. `check` is what the daemon cannot run without (its state folder, the drop folders,
a local target's folder): `run` refuses to start on any of them. `environment` is what an
admin must provide but the daemon can wait for (the ascp executable, credential files):
`check-config` reports them, `run` logs them and starts anyway, and a submission that needs a
missing one is held with an admin alert until it is there.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hotfolder.config.sections import AscpTargetSettings, LocalTargetSettings, Secret
from hotfolder.config.settings import Config, ConfigError, KeyPath


@dataclass(frozen=True, slots=True)
class StartupProblem:
    message: str
    hint: str


def check(cfg: Config) -> list[StartupProblem]:
    return [*_state_dir(cfg), *_watches(cfg), *_targets(cfg)]


def _state_dir(cfg: Config) -> Iterator[StartupProblem]:
    # Private when we make it, whatever the umask: the journal, transfer lists and (by
    # default) the archive and failed folders are the daemon's business alone.
    yield from _creatable(cfg.state_dir, "state_dir", mode=0o700)


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
        if not isinstance(t.settings, LocalTargetSettings):
            continue
        path = t.settings.path
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


def _creatable(folder: Path, what: str, mode: int = 0o777) -> Iterator[StartupProblem]:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=mode)  # the umask only takes bits away
    except OSError as err:
        yield StartupProblem(
            f"{what}: cannot create {folder}: {err.strerror}",
            "create it by hand or fix the permissions of its parent",
        )
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        yield StartupProblem(f"{what}: {folder} is not writable", "fix its permissions")


# -- what the admin must provide ---------------------------------------------------------------


class Severity(StrEnum):
    ERROR = "error"  # cannot work as configured: check-config exits 2
    WARNING = "warning"  # may work for the daemon's user but not as checked here
    NOT_CHECKED = "not checked"  # only visible where the daemon runs (a systemd credential)


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    where: ConfigError  # file, line, key path, message, hint

    def __str__(self) -> str:
        if self.severity is Severity.ERROR:
            return str(self.where)
        w = self.where
        return str(ConfigError(w.file, w.line, w.path, f"{self.severity}: {w.message}", w.hint))


def environment(cfg: Config) -> list[Finding]:
    """Executables and credentials the config names, checked as far as this process can."""
    found: list[Finding] = []

    def at(severity: Severity, path: KeyPath, message: str, hint: str) -> None:
        where = ConfigError(str(cfg.source), cfg.line_of(path), path, message, hint)
        found.append(Finding(severity, where))

    for name, t in cfg.targets.items():
        if not isinstance(t.settings, AscpTargetSettings):
            continue
        base: KeyPath = ("targets", name)
        ascp = t.settings
        _executable(ascp.ascp_path, (*base, "ascp_path"), at)
        keys = ("password_file", "password_credential")
        _secret(ascp.password, keys, base, "Aspera password", at)
        if ascp.key_file is not None:
            _file(ascp.key_file, (*base, "key_file"), "SSH key", at)
    for name, account in cfg.backlot.items():
        keys = ("api_secret_file", "api_secret_credential")
        _secret(account.secret, keys, ("backlot", name), "Backlot secret", at)
    email = cfg.notifications.email
    if email is not None:
        keys = ("password_file", "password_credential")
        _secret(email.password, keys, ("notifications", "email"), "SMTP password", at)
    return found


#: How a check reports: severity, key path, message, hint.
Report = Callable[[Severity, KeyPath, str, str], None]


def _executable(value: str, path: KeyPath, at: Report) -> None:
    found = shutil.which(value)
    if found is not None:
        return
    if os.sep in value:
        what = "does not exist" if not os.path.lexists(value) else "is not an executable file"
        at(
            Severity.ERROR,
            path,
            f"{value} {what}",
            "install the IBM Aspera client there, or set ascp_path to where ascp is",
        )
        return
    at(
        Severity.ERROR,
        path,
        f"'{value}' is not found on PATH ({os.environ.get('PATH', '')})",
        "install the IBM Aspera client, or set ascp_path to its full path, e.g. "
        "/opt/aspera/bin/ascp (the service's PATH may differ from your shell's)",
    )


def _secret(secret: Secret, keys: tuple[str, str], base: KeyPath, what: str, at: Report) -> None:
    """`keys`: the config's names for the secret's file and credential, for the key path."""
    file_key, credential_key = keys
    if secret.file is not None:
        _file(Path(os.path.expanduser(str(secret.file))), (*base, file_key), what, at)
        return
    name = secret.credential
    if not name:
        return
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        at(
            Severity.NOT_CHECKED,
            (*base, credential_key),
            f"credential '{name}' is only visible under systemd",
            f"the unit needs LoadCredential={name}:<file> (or SetCredentialEncrypted=); "
            "`systemctl reload` runs this check inside the unit",
        )
        return
    _file(Path(folder) / name, (*base, credential_key), f"{what} (credential '{name}')", at)


def _file(file: Path, path: KeyPath, what: str, at: Report) -> None:
    """Present, a regular file, readable and not empty. Its content is never read into a
    message: a config pointing at the wrong file must not print a secret."""
    try:
        st = file.stat()
    except FileNotFoundError:
        at(Severity.ERROR, path, f"{what} file {file} does not exist", "create it or fix the path")
        return
    except OSError as err:
        at(
            Severity.WARNING,
            path,
            f"{what} file {file} cannot be looked at by {_user()}: {err.strerror}",
            "the daemon's user must be able to read it; check the folders above it",
        )
        return
    if not file.is_file():
        at(Severity.ERROR, path, f"{what} file {file} is not a regular file", "fix the path")
    elif not os.access(file, os.R_OK):
        at(
            Severity.WARNING,
            path,
            f"{what} file {file} is not readable by {_user()}",
            "that is right if the daemon runs as another user who can read it "
            "(e.g. hotfolder, mode 0600); run check-config as that user to be sure",
        )
    elif st.st_size == 0:
        at(Severity.ERROR, path, f"{what} file {file} is empty", "write the secret into it")


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"
