from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from hotfolder.service import logs


@pytest.fixture(autouse=True)
def _json_logs() -> None:
    """Every test starts logging to the real stderr: a CLI command run under capsys
    configures logging to capsys's stream, which is closed when that test ends."""
    logs.configure("json", "debug", stream=sys.stderr)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """A test that leaves a thread running (an observer, a worker) fails, as watchdog's do."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"threads leaked: {[t.name for t in leaked]}")
        time.sleep(0.01)


# The throwaway PostgreSQL server's fixtures (pg_server, pg_own_server) and its leftover check.
pytest_plugins = ["tests.pg"]
