"""The web window under a big journal: p95 of the overview, a filtered list page and /metrics
with 100,000 submissions in the journal, against the same requests on an empty journal in the
same run (the ratio says what the rows cost, the machine's speed cancels out).

The window is served as `hotfolder run` serves it (waitress, the real app, a read-only
JournalReader); the journal is filled in one transaction with rows shaped like the daemon's
(three watches, every state, owners in the detail, a few hundred pending and sending).

    .venv/bin/python -m bench.window [--rows 100000] [--requests 300] [--pickup 60]

With --pickup N, also bench.watch_latency's pick-up latency (stable -> first byte at the
target, N submissions, inotify mode) of a `hotfolder run` without the window, and with it on
and 10 clients polling /api/overview ten times as often as a page does, in turns (off, on,
off, on) so a drift of the machine shows as the spread between rounds.

Prints a table and writes bench/results/window.json with the machine's core count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench.common import REPO, percentile
from hotfolder.metrics import Counters
from hotfolder.model import State
from hotfolder.state.journal import Journal
from hotfolder.state.reader import JournalReader
from hotfolder.window.app import Actions, Outcome, WindowSettings, create_app
from hotfolder.window.server import Server

WATCHES = ("news", "sport", "promos")
OWNERS = ("ada", "bob", "cyd", "dee", "eve")
#: The mix of a journal that has run for months: nearly everything delivered.
STATES = ([State.COMPLETE] * 90 + [State.FAILED] * 6 + [State.HELD] * 1 + [State.PENDING] * 2) + [
    State.READY
]
#: The requests measured: what a wall screen polls, an editor's filtered list, a scrape.
REQUESTS = {
    "overview": "/",
    "overview (live JSON)": "/api/overview",
    "list: watch+state+owner": "/submissions?watch=news&state=failed&owner=ada",
    "list: text search": "/submissions?q=clip-0004",
    "/metrics": "/metrics",
}
LIMIT_MS = 50.0


def fill(journal_path: Path, rows: int) -> None:
    """`rows` submissions, newest last, straight into the journal's tables."""
    Journal(journal_path).close()  # the schema and its indexes, as the daemon makes them
    rng = random.Random(12)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with sqlite3.connect(journal_path) as db:
        subs, history = [], []
        for i in range(rows):
            at = (start + timedelta(seconds=60 * i)).isoformat()
            state = rng.choice(STATES)
            failed = state is State.FAILED
            detail: dict[str, object] = {"owner": rng.choice(OWNERS)}
            if failed:
                detail["problems"] = [
                    {"code": "missing-file", "message": "gone", "hint": "copy it", "path": None}
                ]
            sid = f"clip-{i:06d}-{i * 2654435761 % 2**32:08x}"
            files = [{"relpath": f"clip-{i:06d}.mp4", "dest": f"clip-{i:06d}.mp4", "size": 1}]
            subs.append(
                (
                    sid,
                    rng.choice(WATCHES),
                    f"clip-{i:06d}.xml",
                    str(state),
                    json.dumps(files),
                    1_000_000,
                    "missing-file" if failed else None,
                    "gone" if failed else None,
                    json.dumps(detail),
                    at,
                    at,
                )
            )
            history.append((sid, at, str(state), ""))
        db.executemany(
            "INSERT INTO submissions (id, watch, manifest, state, files, bytes_total, "
            "error_code, error_message, detail, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            subs,
        )
        db.executemany(
            "INSERT INTO history (submission_id, at, state, note) VALUES (?,?,?,?)", history
        )


@contextmanager
def serving(journal_path: Path) -> Iterator[tuple[str, int]]:
    reader = JournalReader(journal_path)
    nothing = Actions(
        retry=lambda _s, _u: Outcome(False, "bench"), hold=lambda _s, _u: Outcome(False, "b")
    )
    settings = WindowSettings(watches=list(WATCHES), version="bench")
    server = Server(create_app(settings, reader, Counters(), nothing, None), ["127.0.0.1:0"])
    server.start()
    try:
        yield server.addresses[0]
    finally:
        server.stop()
        reader.close()


def get(conn: http.client.HTTPConnection, path: str) -> float:
    """Milliseconds for one request over a kept-alive connection (as a polling page does)."""
    t0 = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    took = (time.perf_counter() - t0) * 1000
    if response.status != 200 or not body:
        raise SystemExit(f"{path}: HTTP {response.status}")
    return took


def measure(
    empty: tuple[str, int], full: tuple[str, int], path: str, n: int
) -> tuple[list[float], list[float]]:
    """The same request to both windows in turn, so whatever else loads the machine (other
    processes, CPU frequency) weighs on both alike and the ratio stays fair."""
    conns = [http.client.HTTPConnection(*a, timeout=30) for a in (empty, full)]
    times: tuple[list[float], list[float]] = ([], [])
    try:
        for i in range(n + 10):
            for conn, kept in zip(conns, times, strict=True):
                took = get(conn, path)
                if i >= 10:  # the first requests warm Jinja's and SQLite's caches
                    kept.append(took)
    finally:
        for conn in conns:
            conn.close()
    return times


POLLERS = 10
POLL_EVERY = 0.2  # a page polls every 2 s: ten times as often


def pickup_rounds(count: int) -> dict[str, list[dict[str, float]]]:
    """p50/p95 pick-up latency, window off and on, two rounds each."""
    from bench import watch_latency  # noqa: PLC0415 - only for --pickup

    plain_config = watch_latency.write_config
    rounds: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for label in ("off", "on", "off", "on"):
        with tempfile.TemporaryDirectory(prefix="hf-bench-pickup-") as tmp:
            stop = threading.Event()
            pollers: list[threading.Thread] = []
            if label == "on":
                port = free_port()

                def with_http(root: Path, mode: str, port: int = port) -> Path:
                    path = plain_config(root, mode)
                    data = yaml.safe_load(path.read_text())
                    data["http"] = {"listen": f"127.0.0.1:{port}"}
                    path.write_text(yaml.safe_dump(data))
                    return path

                watch_latency.write_config = with_http
                pollers = [
                    threading.Thread(target=poll, args=(port, stop), daemon=True)
                    for _ in range(POLLERS)
                ]
                for t in pollers:
                    t.start()
            try:
                rounds[label].append(watch_latency.latency(Path(tmp), "inotify", count))
            finally:
                watch_latency.write_config = plain_config
                stop.set()
                for t in pollers:
                    t.join(10)
    return rounds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(port: int, stop: threading.Event) -> None:
    """One wall screen, polling as fast as ten would; refused until the daemon is up."""
    while not stop.wait(POLL_EVERY):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/overview")
            conn.getresponse().read()
            conn.close()
        except OSError:
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pickup", type=int, default=0, help="submissions per pick-up round")
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="hf-bench-window-") as tmp:
        empty, full = Path(tmp) / "empty.sqlite", Path(tmp) / "full.sqlite"
        Journal(empty).close()
        t0 = time.perf_counter()
        fill(full, args.rows)
        filled = time.perf_counter() - t0
        p95: dict[str, dict[str, float]] = {"empty": {}, "full": {}}
        with serving(empty) as at_empty, serving(full) as at_full:
            for name, path in REQUESTS.items():
                on_empty, on_full = measure(at_empty, at_full, path, args.requests)
                p95["empty"][name] = percentile(on_empty, 95)
                p95["full"][name] = percentile(on_full, 95)
        rows = []
        for name in REQUESTS:
            e, f = p95["empty"][name], p95["full"][name]
            results[name] = {"p95_empty_ms": e, "p95_full_ms": f, "ratio": f / e}
            verdict = "ok" if f < LIMIT_MS else "OVER"
            rows.append([name, f"{e:.1f}", f"{f:.1f}", f"{f / e:.2f}", verdict])
    print(f"journal: {args.rows} submissions (filled in {filled:.1f} s), {args.requests} requests")
    head = ["request", "p95 empty ms", f"p95 {args.rows} ms", "ratio", f"< {LIMIT_MS:.0f} ms"]
    for line in [head, *rows]:
        print(f"{line[0]:<26}" + "".join(f"{cell:>16}" for cell in line[1:]))
    if args.pickup:
        rounds = pickup_rounds(args.pickup)
        results["pickup_seconds"] = rounds
        print(f"pick-up latency, {args.pickup} submissions a round (p50 / p95 / max, s):")
        for label, found in rounds.items():
            for r in found:
                print(f"  window {label:<3}  {r['p50']:.3f} / {r['p95']:.3f} / {r['max']:.3f}")
    out = REPO / "bench" / "results" / "window.json"
    out.write_text(
        json.dumps(
            {
                "rows": args.rows,
                "requests": args.requests,
                "cores": os.cpu_count(),
                "load_average": os.getloadavg()[0],
                **results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written: {out}")


if __name__ == "__main__":
    main()
