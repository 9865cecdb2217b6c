"""Fair share between watches (issue 14): how long one urgent clip waits behind a big drop.

One watch ("series") has 200 submissions ready; two workers send them, one ascp session each,
through the ascp simulator (real processes, real management port, real bytes). Once both
workers are busy, a second watch ("news") gets one urgent submission. Its wait runs from the
moment it is ready to its session's first byte. The same run is made twice, with the dispatch
order of issue 14 (ReadyQueue: watches take turns) and with the order before it (arrival
only, as the thread pool's queue did).

Goal: with fair share the urgent clip waits in the queue no longer than the shortest remaining
time of the sessions running when it arrived (then its own session's start-up, shown apart).

    .venv/bin/python -m bench.fair_share [--queued 200] [--workers 2]
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bench.common import REPO, fair_share_runs, simulator_wrapper, table, wait_for
from hotfolder.transfer.ready_queue import Ready, ReadyQueue
from hotfolder.transfer.targets.ascp import AscpSettings, AscpTarget
from hotfolder.transfer.targets.base import Session

RESULTS = REPO / "bench" / "results" / "fair_share.json"
SIZE = 4 * 1024 * 1024  # bytes per submission
RATE = 20e6  # simulated link, bytes per second: 0.2 s of data per session


@dataclass
class Timeline:
    """When each submission became ready, started, moved its first byte and ended."""

    ready: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    first_byte: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    order: list[str] = field(default_factory=list)


def simulated_target(base: Path) -> AscpTarget:
    """An ascp target whose ascp is the simulator, on a link of RATE bytes per second."""
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
    return AscpTarget(
        AscpSettings(
            name="aspera",
            host="127.0.0.1",
            user="editor",
            work_dir=base / "work",
            password_file=base / "secret",
            ascp_path=str(wrapper),
            destination="/incoming",
        )
    )


def one_run(base: Path, *, fair: bool, queued: int, workers: int) -> dict[str, float | int]:
    source = base / "source"
    source.mkdir(parents=True)
    target = simulated_target(base)
    queue = ReadyQueue(fair=fair)
    cond = threading.Condition()
    stop = threading.Event()
    cancel = threading.Event()
    times = Timeline()

    def submit(sid: str, watch: str) -> None:
        (source / f"{sid}.mov").write_bytes(b"v" * SIZE)
        with cond:
            times.ready[sid] = time.monotonic()
            queue.push(Ready(sid, watch, "aspera"))
            cond.notify()

    def worker() -> None:
        while not stop.is_set():
            with cond:
                item = queue.pop()
                while item is None and not stop.is_set():
                    cond.wait(0.1)
                    item = queue.pop()
                if item is None:
                    return
                times.started[item.sid] = time.monotonic()
                times.running.add(item.sid)
                times.order.append(item.sid)
            sid = item.sid

            def progress(done: int, sid: str = sid) -> None:
                if done > 0:
                    times.first_byte.setdefault(sid, time.monotonic())

            session = Session(sid, "media", ((source / f"{sid}.mov", PurePosixPath(f"{sid}.mov")),))
            target.send(session, progress, cancel)
            with cond:
                times.ended[sid] = time.monotonic()
                times.running.discard(sid)

    for n in range(queued):
        submit(f"series{n:03d}", "series")
    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    # The clip arrives while every worker is in the middle of a session (past its first byte).
    wait_for(
        lambda: (
            len(times.ended) >= workers
            and len([s for s in times.running if s in times.first_byte]) == workers
        ),
        60,
        "both workers busy",
    )
    with cond:
        running_at_arrival = set(times.running)
        dispatched_before = len(times.order)
    submit("news", "news")
    wait_for(lambda: "news" in times.first_byte, 600, "the urgent clip's first byte")
    stop.set()
    with cond:
        cond.notify_all()
    for t in threads:
        t.join(60)
    arrival = times.ready["news"]
    shortest_remaining = min(times.ended[s] for s in running_at_arrival) - arrival
    return {
        "fair_share": fair,
        "wait_ready_to_first_byte_s": round(times.first_byte["news"] - arrival, 3),
        "queue_wait_s": round(times.started["news"] - arrival, 3),
        "session_start_to_first_byte_s": round(times.first_byte["news"] - times.started["news"], 3),
        "shortest_remaining_at_arrival_s": round(shortest_remaining, 3),
        "series_sent_after_arrival": times.order.index("news") - dispatched_before,
        "goal_met": times.started["news"] - arrival <= shortest_remaining + 0.05,
    }


def main() -> None:
    runs = fair_share_runs(
        one_run, __doc__.split("\n\n")[0], RESULTS, "hotfolder-fair-", SIZE, RATE
    )
    rows = [
        (
            f"{name}: wait ready -> first byte",
            f"{r['wait_ready_to_first_byte_s']:.3f} s",
            f"queue {r['queue_wait_s']:.3f} s + start {r['session_start_to_first_byte_s']:.3f} s; "
            f"shortest remaining {r['shortest_remaining_at_arrival_s']:.3f} s; "
            f"{r['series_sent_after_arrival']} series sessions first; goal met: {r['goal_met']}",
        )
        for name, r in runs.items()
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
