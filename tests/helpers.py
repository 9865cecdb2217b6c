"""Helpers for tests that run real threads and files: wait on conditions, never on sleeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hotfolder import config
from hotfolder.daemon import Daemon
from hotfolder.delivery import RetryPolicy


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll `condition` until it is truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.01)


def write_config(tmp: Path, **watch: Any) -> Path:
    for folder in ("drop", "ingest"):
        (tmp / folder).mkdir(exist_ok=True)
    data = {
        "state_dir": str(tmp / "state"),
        "logging": {"target": "json", "level": "debug"},
        "watches": [{
            "name": "w", "path": str(tmp / "drop"), "target": "nas",
            "stability_seconds": 0.5, "after_success": "archive",
            "archive_dir": str(tmp / "archive"), "failed_dir": str(tmp / "failed"), **watch,
        }],
        "targets": {"nas": {"type": "local", "path": str(tmp / "ingest")}},
    }
    path = tmp / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


FAST_RETRY = RetryPolicy(tries=3, initial=0.01, factor=2, max_delay=0.05)


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
