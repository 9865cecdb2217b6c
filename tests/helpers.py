"""Helpers for tests that run real threads and files: wait on conditions, never on sleeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hotfolder.config import settings as config
from hotfolder.service.daemon import Daemon
from hotfolder.transfer.delivery import RetryPolicy
from tests.fakes import SIMULATOR, simulator_wrapper, wait_until

__all__ = [
    "FAST_RETRY",
    "SIMULATOR",
    "ascp_config",
    "running",
    "sim_sessions",
    "wait_until",
    "write_config",
]


def write_config(tmp: Path, **watch: Any) -> Path:
    for folder in ("drop", "ingest"):
        (tmp / folder).mkdir(exist_ok=True)
    data = {
        "state_dir": str(tmp / "state"),
        "logging": {"target": "json", "level": "debug"},
        "watches": [
            {
                "name": "w",
                "path": str(tmp / "drop"),
                "target": "nas",
                "stability_seconds": 0.5,
                "after_success": "archive",
                "archive_dir": str(tmp / "archive"),
                "failed_dir": str(tmp / "failed"),
                **watch,
            }
        ],
        "targets": {"nas": {"type": "local", "path": str(tmp / "ingest")}},
    }
    path = tmp / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


FAST_RETRY = RetryPolicy(tries=3, initial_delay=0.01, factor=2, max_delay=0.05)


@contextmanager
def running(cfg: config.Config, **kw: Any) -> Iterator[Daemon]:
    """Run a daemon on a thread; stop it and wait for it on the way out."""
    daemon = Daemon(cfg, retry=kw.pop("retry", FAST_RETRY), **kw)
    ready = threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            daemon.run(on_ready=ready.set)
        except BaseException as err:
            errors.append(err)
            ready.set()
            raise

    thread = threading.Thread(target=main, name="daemon-under-test")
    thread.start()
    try:
        assert ready.wait(15), "daemon did not become ready"
        assert not errors, errors
        yield daemon
    finally:
        daemon.stop()
        thread.join(30)
        assert not thread.is_alive(), "daemon did not stop"
    assert not errors, errors


def ascp_config(
    tmp: Path,
    faults: list[dict[str, Any]] | None = None,
    password: str = "pw",
    server_password: str | None = "pw",
    rate: float = 50e6,
    **target: Any,
) -> Path:
    """A config whose target is the ascp simulator (through a wrapper carrying its env)."""
    server = tmp / "server"
    server.mkdir(exist_ok=True)
    (tmp / "secrets").mkdir(exist_ok=True)
    (tmp / "secrets" / "aspera.pass").write_text(password + "\n")
    env = {
        "ASCP_SIM_ROOT": str(server),
        "ASCP_SIM_STATE": str(tmp / "sim"),
        "ASCP_SIM_FAULTS": json.dumps(faults or []),
        "ASCP_SIM_RATE": str(rate),
    }
    if server_password is not None:
        env["ASCP_SIM_PASSWORD"] = server_password
    wrapper = simulator_wrapper(tmp, env)
    path = write_config(tmp)
    data = yaml.safe_load(path.read_text())
    data["targets"] = {
        "aspera": {
            "type": "ascp",
            "host": "127.0.0.1",
            "user": "editor",
            "password_file": str(tmp / "secrets" / "aspera.pass"),
            "ascp_path": str(wrapper),
            "destination": "/incoming",
            "retry": {"tries": 4, "initial_delay": 0.01, "factor": 2, "max_delay": 0.05},
            **target,
        }
    }
    data["watches"][0]["target"] = "aspera"
    path.write_text(yaml.safe_dump(data))
    return path


def sim_sessions(tmp: Path) -> list[dict[str, Any]]:
    log = tmp / "sim" / "sessions.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def hotfolder(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, as an admin or cron runs it."""
    return subprocess.run(
        [sys.executable, "-m", "hotfolder", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )
