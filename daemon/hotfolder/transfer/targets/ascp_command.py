"""The ascp command as data (pure): the target's settings, argv, environment and file-pair
list, and the verdict read from the last FASPMGR frame and the exit status (ingest-facts §1).
Nothing secret is ever in argv: the password travels in ASPERA_SCP_PASS."""

from __future__ import annotations

import base64
import errno
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hotfolder.config import sections
from hotfolder.config.sections import AscpTargetSettings
from hotfolder.transfer import faspmgr
from hotfolder.transfer.targets.base import Fault, Session, TransferError

#: Environment variables of ours that must not leak into ascp (it reads several ASPERA_*).
DROPPED_ENV = (
    "ASPERA_SCP_PASS",
    "ASPERA_SCP_TOKEN",
    "ASPERA_SCP_KEY",
    "ASPERA_SCP_FILEPASS",
    "ASPERA_SCP_COOKIE",
    "ASPERA_PROXY_PASS",
)

#: How ascp is told its files: a list in the state dir (also how orphans are found, see
#: transfer.orphans).
FILE_LIST_OPTION = "--file-pair-list"


@dataclass(frozen=True, slots=True)
class AscpSettings(AscpTargetSettings):
    """The target's typed config (defaults from the schema), plus where a run keeps its file
    lists and receipts: under state_dir, never in a watch folder."""

    name: str = field(kw_only=True)
    work_dir: Path = field(kw_only=True)

    @classmethod
    def of(cls, name: str, target: AscpTargetSettings, work_dir: Path) -> AscpSettings:
        given = {f.name: getattr(target, f.name) for f in fields(AscpTargetSettings)}
        return cls(**given, name=name, work_dir=work_dir)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any], work_dir: Path) -> AscpSettings:
        """From a target's raw keys (TargetConfig.options): prefer `of` with its `settings`."""
        typed = sections.target({**options, "type": "ascp"}, Path)
        if not isinstance(typed, AscpTargetSettings):  # an "ascp" block gives ascp settings
            raise TypeError(f"not ascp settings: {typed!r}")
        return cls.of(name, typed, work_dir)


# -- argv and environment ------------------------------------------------------------------


def build_argv(
    s: AscpSettings,
    session: Session,
    mgmt_port: int,
    pair_list: Path,
    receipt_dir: Path | None = None,
) -> tuple[str, ...]:
    """The whole command line, as data. Nothing in it is secret."""
    argv: list[str] = [
        s.ascp_path,
        "-q",
        "--mode=send",
        f"--host={s.host}",
        f"--user={s.user}",
        "-P",
        str(s.ssh_port),
        "-O",
        str(s.udp_port),
    ]
    if s.target_rate:
        argv += ["-l", s.target_rate]
    if s.min_rate:
        argv += ["-m", s.min_rate]
    argv += [f"--policy={s.policy}", "-k", str(s.resume), "--overwrite=diff", "-d"]
    if s.cipher:
        argv += ["-c", s.cipher]
    if s.key_file:
        argv += ["-i", str(s.key_file)]
    if s.sshfp:
        argv += [f"--check-sshfp={s.sshfp}"]
    if receipt_dir is not None:
        # A per-session receipt of delivered files: crash-recovery evidence (ingest-facts §1.7)
        argv += ["--file-manifest=text", f"--file-manifest-path={receipt_dir}"]
    tags = {"hotfolder": {"submission": session.submission_id, "session": session.label}}
    argv += [
        f"--tags={json.dumps(tags, separators=(',', ':'))}",
        f"{FILE_LIST_OPTION}={pair_list}",
        "-M",
        str(mgmt_port),
        "--dest64",
        base64.b64encode(s.destination.encode()).decode(),
    ]
    return tuple(argv)


def build_env(base: Mapping[str, str], password: str | None) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in DROPPED_ENV}
    env["ASPERA_TEST_REDIS_DISABLE"] = "true"  # as aspera-cli does
    if password is not None:
        env["ASPERA_SCP_PASS"] = password
    return env


def pair_list_text(session: Session) -> str:
    """Alternating source and destination lines (UTF-8), one pair per file."""
    lines = []
    for src, dest in session.files:
        for value in (str(src), str(dest)):
            if "\n" in value or "\r" in value:
                raise TransferError(
                    f"file name with a line break: {value!r}",
                    "bad-name",
                    Fault.EDITOR,
                    may_have_arrived=False,
                )
            lines.append(value)
    return "\n".join(lines) + "\n"


# -- the verdict --------------------------------------------------------------------------


def fault_of(code: int, description: str = "") -> Fault:
    """Who can fix a FASP error: the admin (credentials, licence, configuration), nobody
    (retry: the network, a busy server), else the editor (a file, a name)."""
    if code in faspmgr.ADMIN_CODES:
        return Fault.ADMIN
    if faspmgr.is_retryable(code, description):
        return Fault.TRANSIENT
    return Fault.EDITOR


def classify(
    last: faspmgr.Frame | None, exit_code: int | None, output: list[str], connected: bool
) -> TransferError | None:
    """The session's verdict: None if it succeeded, else the error to report or retry. Whether
    anything arrived is decided by the caller, who knows what ascp could have read."""
    tail = " | ".join(line for line in output[-5:] if line)
    if last is not None and last.type == "DONE" and exit_code == 0:
        return None
    if last is not None and last.type == "ERROR":
        code = last.int("Code", 2)
        description = last.get("Description") or tail or "ascp failed"
        name = faspmgr.CODE_NAMES.get(code, "error")
        return TransferError(
            f"{description} (FASP error {code}: {name})",
            f"fasp-{code}",
            fault_of(code, description),
        )
    if not connected:
        if any(w in tail.lower() for w in ("unrecognized option", "bad argument", "usage")):
            # Our argv comes from the config and the installed ascp: the admin's to fix.
            return TransferError(f"ascp refused its arguments: {tail}", "fasp-8", Fault.ADMIN)
        return TransferError(
            f"ascp exited (status {exit_code}) before opening its "
            f"management connection: {tail or 'no output'}",
            "no-mgmt",
        )
    if last is not None and last.type == "INIT":
        return TransferError(
            f"ascp stopped right after starting, usually an SSH handshake "
            f"failure: {tail or 'no output'}",
            "early-exit",
        )
    if last is not None and last.type == "DONE":
        return TransferError(f"ascp reported DONE but exited with status {exit_code}", "bad-exit")
    return TransferError(
        f"ascp ended without a verdict (status {exit_code}): {tail or 'no output'}",
        "no-verdict",
    )


def no_ascp(path: str, why: str) -> TransferError:
    return TransferError(
        f"cannot run ascp ({path!r}): {why}; install IBM Aspera's ascp or set the "
        "target's ascp_path",
        "no-ascp",
        Fault.ADMIN,
        may_have_arrived=False,
    )


def state_dir_error(err: OSError) -> TransferError:
    full = err.errno in (errno.ENOSPC, errno.EDQUOT)
    return TransferError(
        f"cannot prepare the session in the state folder: {err.strerror or err} ({err.filename})",
        "state-dir",
        Fault.TRANSIENT if full else Fault.ADMIN,
        may_have_arrived=False,
    )
