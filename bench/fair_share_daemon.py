"""Fair share through the real daemon (issue 14): bench/fair_share.py measured the ReadyQueue
alone; this runs the same case end to end. Watch "series" holds 200 drops (a manifest and a
4 MiB clip each), both watches send to one ascp target (the simulator, 20 MB/s), two workers.
Once both workers are busy and some of the series is done, watch "news" gets one urgent drop.
Its wait is read from the journal: ready -> sending-media (the session's start; the
simulator's first byte follows within a STATS period), and how many series sessions started
in between. Run twice: the dispatcher's ReadyQueue as shipped (watches take turns), and
`fair=False` (arrival order, as the thread pool's queue did before issue 14).

    .venv/bin/python -m bench.fair_share_daemon [--queued 200] [--workers 2]
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import yaml
from tests import manifests

from bench.common import REPO, fair_share_runs, simulator_wrapper, table, wait_for
from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.service.daemon import Daemon
from hotfolder.transfer.ready_queue import ReadyQueue

RESULTS = REPO / "bench" / "results" / "fair_share_daemon.json"
SIZE = 4 * 1024 * 1024
RATE = 20e6


def write_config(base: Path, workers: int) -> Path:
    (base / "server").mkdir(parents=True)
    (base / "secret").write_text("pw\n")
    wrapper = simulator_wrapper(
        base,
        {
            "ASCP_SIM_ROOT": str(base / "server"),
            "ASCP_SIM_STATE": str(base / "sim"),
            "ASCP_SIM_RATE": str(RATE),
            "ASCP_SIM_PASSWORD": "pw",
        },
    )
    watches = []
    for name in ("series", "news"):
        (base / name).mkdir()
        watches.append(
            {"name": name, "path": str(base / name), "target": "aspera", "stability_seconds": 0.5}
        )
    data = {
        "state_dir": str(base / "state"),
        "workers": workers,
        "min_free_bytes": 0,
        "logging": {"target": "json", "level": "warning"},
        "watches": watches,
        "targets": {
            "aspera": {
                "type": "ascp",
                "host": "127.0.0.1",
                "user": "editor",
                "password_file": str(base / "secret"),
                "ascp_path": str(wrapper),
                "destination": "/incoming",
            }
        },
    }
    path = base / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def drop(folder: Path, name: str) -> None:
    (folder / f"{name}.mov").write_bytes(b"v" * SIZE)
    item = manifests.ooyala_item(video=f"{name}.mov", thumb=None, caption=None, guid=name)
    (folder / f"{name}.xml").write_text(manifests.ooyala(item))


def entered(daemon: Daemon, sid: str, state: State) -> datetime | None:
    times = [at for at, to, _ in daemon.journal.history(sid) if to == state]
    return datetime.fromisoformat(times[0]) if times else None


def one_run(base: Path, *, fair: bool, queued: int, workers: int) -> dict[str, float | int]:
    path = write_config(base, workers)
    for n in range(queued):
        drop(base / "series", f"series{n:03d}")
    daemon = Daemon(config.load(path), shutdown_grace=0.5)
    daemon.dispatcher.queue = ReadyQueue(fair=fair)
    thread = threading.Thread(target=daemon.run, name="daemon")
    thread.start()
    try:
        counts = daemon.journal.counts
        wait_for(
            lambda: (
                counts().get(State.COMPLETE, 0) >= workers
                and counts().get(State.SENDING_MEDIA, 0) == workers
            ),
            300,
            "the series under way, both workers busy",
        )
        drop(base / "news", "news")
        news = wait_for(
            lambda: next((r.id for r in daemon.journal.rows(watch="news")), None), 60, "news"
        )
        wait_for(lambda: entered(daemon, news, State.SENDING_MEDIA), 600, "news to start")
        ready = entered(daemon, news, State.READY)
        started = entered(daemon, news, State.SENDING_MEDIA)
        if ready is None or started is None:
            raise RuntimeError("the journal lost the news clip's history")
        between = 0
        for row in daemon.journal.rows(watch="series", limit=queued):
            at = entered(daemon, row.id, State.SENDING_MEDIA)
            if at is not None and ready <= at < started:
                between += 1
    finally:
        daemon.stop()
        thread.join(120)
    return {
        "fair_share": fair,
        "wait_ready_to_session_start_s": round((started - ready).total_seconds(), 3),
        "series_sessions_started_in_between": between,
    }


def main() -> None:
    runs = fair_share_runs(
        one_run, __doc__.split("\n\n")[0], RESULTS, "hotfolder-fair-daemon-", SIZE, RATE
    )
    rows = [
        (
            f"{name}: news ready -> session start",
            f"{r['wait_ready_to_session_start_s']:.3f} s",
            f"{r['series_sessions_started_in_between']} series sessions started first",
        )
        for name, r in runs.items()
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
