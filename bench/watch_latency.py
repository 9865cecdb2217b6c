"""Watching, measured: pick-up latency, start-up scan, idle cost, against a naive baseline.

1. latency from the moment the last file of a submission becomes stable (its last write +
   stability_seconds) to the moment the target sees its first byte (the first `.partial`
   there), p50/p95/max over N submissions, in inotify mode and in poll mode;
2. a tree of 100,000 files in 5,000 folders plus 100 real submissions: start-up until
   READY=1 (sd_notify, caught on a socket this script binds), steady RSS, idle CPU;
3. the same tree under watchdog's PollingObserver at its default interval (the naive
   baseline), in the same run: CPU and RSS ratios.

    .venv/bin/python -m bench.watch_latency [--submissions 200] [--idle-seconds 60]

Prints a table and writes bench/results/watch.json with the machine's core count.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from bench.common import REPO, count_state, idle_cost, summary, table, wait_for

STABILITY = 1.0
POLL_INTERVAL = 2.0
MANIFEST = """<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><item>
<media:content url="{video}"/><guid>{video}</guid></item></channel></rss>
"""


class FirstBytes(FileSystemEventHandler):
    """When each `<name>.partial` first appears at the target (CLOCK_MONOTONIC)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()

    def on_created(self, event: FileSystemEvent) -> None:
        name = os.path.basename(str(event.src_path))
        if name.endswith(".mp4.partial"):
            with self.lock:
                self.seen.setdefault(name.removesuffix(".partial"), time.monotonic())


def write_config(root: Path, mode: str) -> Path:
    for folder in ("drop", "ingest", "state"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    config = {
        "state_dir": str(root / "state"),
        "logging": {"target": "json", "level": "warning"},
        "watches": [
            {
                "name": "bench",
                "path": str(root / "drop"),
                "target": "out",
                "stability_seconds": STABILITY,
                "after_success": "delete",
                "mode": mode,
                "poll_interval": POLL_INTERVAL,
            }
        ],
        "targets": {"out": {"type": "local", "path": str(root / "ingest")}},
    }
    path = root / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start(config: Path, notify: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify)
    return subprocess.Popen(
        [sys.executable, "-m", "hotfolder", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(config.parent / "daemon.log", "wb"),
    )


def latency(root: Path, mode: str, count: int) -> dict[str, float]:
    config = write_config(root, mode)
    arrivals = FirstBytes()
    observer = Observer()
    observer.schedule(arrivals, str(root / "ingest"))
    observer.start()
    daemon = start(config)
    stable_at: dict[str, float] = {}
    try:
        wait_for((root / "state" / "journal.sqlite").exists, 30, "the daemon")
        time.sleep(0.5)
        for i in range(count):
            video = f"s{i:04}.mp4"
            (root / "drop" / video).write_bytes(os.urandom(8192))
            (root / "drop" / f"s{i:04}.xml").write_text(MANIFEST.format(video=video))
            stable_at[video] = time.monotonic() + STABILITY  # the last byte is written
            time.sleep(0.1 if mode == "inotify" else 0.05)
        wait_for(
            lambda: count_state(root / "state", "complete") >= count,
            120 + count,
            "every submission to complete",
        )
    finally:
        daemon.terminate()
        daemon.wait(30)
        observer.stop()
        observer.join()
    return summary([arrivals.seen[v] - t for v, t in stable_at.items() if v in arrivals.seen])


def make_tree(drop: Path, folders: int, files_per_folder: int, submissions: int) -> None:
    for i in range(folders):
        folder = drop / f"show{i // 100:02}" / f"ep{i:04}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(files_per_folder):
            (folder / f"clip{j:02}.bin").write_bytes(b"")
    for i in range(submissions):
        k = i * max(folders // submissions, 1) % folders  # spread among the folders
        folder = drop / f"show{k // 100:02}" / f"ep{k:04}"
        (folder / f"real{i}.mp4").write_bytes(b"r" * 1024)
        (folder / f"real{i}.xml").write_text(MANIFEST.format(video=f"real{i}.mp4"))


def big_tree(root: Path, mode: str, tree: Path, idle: float) -> dict[str, float]:
    config = write_config(root, mode)
    drop = root / "drop"
    drop.rmdir()
    drop.symlink_to(tree)
    notify = root / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(120)
    started = time.monotonic()
    daemon = start(config.resolve(), notify)
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
        ready = time.monotonic() - started
        # Keep reading, as systemd does: a full datagram queue would block sd_notify.
        threading.Thread(target=_drain, args=(sock,), daemon=True).start()
        # the settle lets the start-up work (the 100 real submissions) finish first
        cpu, rss = idle_cost(daemon.pid, idle)
    finally:
        daemon.terminate()
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            print((root / "daemon.log").read_text()[-3000:], file=sys.stderr)
            daemon.kill()
            raise
        sock.close()
    return {"ready_s": ready, "idle_cpu_percent": cpu, "rss_mb": rss}


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        return


BASELINE = """
import sys, time
from watchdog.events import FileSystemEventHandler
from watchdog.observers.polling import PollingObserver
observer = PollingObserver()
observer.schedule(FileSystemEventHandler(), sys.argv[1], recursive=True)
observer.start()
print("READY", flush=True)
time.sleep(float(sys.argv[2]))
"""


def baseline(tree: Path, idle: float) -> dict[str, float]:
    """watchdog's PollingObserver at its default interval over the same tree."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE, str(tree), str(idle + 600)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        ready = time.monotonic() - started
        cpu, rss = idle_cost(proc.pid, idle)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"ready_s": ready, "idle_cpu_percent": cpu, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--folders", type=int, default=5000)
    parser.add_argument("--files-per-folder", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "cores": os.cpu_count(),
        "stability_seconds": STABILITY,
        "poll_interval": POLL_INTERVAL,
    }
    with tempfile.TemporaryDirectory(prefix="hotfolder-watch-") as tmp:
        base = Path(tmp)
        results["latency_inotify_s"] = latency(base / "lat-inotify", "inotify", args.submissions)
        results["latency_poll_s"] = latency(base / "lat-poll", "poll", args.submissions)
        tree = base / "tree"
        tree.mkdir()
        make_tree(tree, args.folders, args.files_per_folder, 100)
        results["files"] = args.folders * args.files_per_folder + 200
        results["tree_inotify"] = big_tree(base / "big-inotify", "inotify", tree, args.idle_seconds)
        make_tree(tree, args.folders, args.files_per_folder, 100)  # the first run sent them
        results["tree_poll"] = big_tree(base / "big-poll", "poll", tree, args.idle_seconds)
        results["tree_baseline_polling_observer"] = baseline(tree, args.idle_seconds)
    li, lp = results["latency_inotify_s"], results["latency_poll_s"]
    ti, tp, tb = (
        results["tree_inotify"],
        results["tree_poll"],
        results["tree_baseline_polling_observer"],
    )
    print(
        table(
            [
                (
                    "latency inotify p50/p95/max (s)",
                    f"{li['p50']:.3f}/{li['p95']:.3f}/{li['max']:.3f}",
                    "goal p95 <= 0.25",
                ),
                (
                    "latency poll p50/p95/max (s)",
                    f"{lp['p50']:.3f}/{lp['p95']:.3f}/{lp['max']:.3f}",
                    f"goal p95 <= {POLL_INTERVAL + 0.25}",
                ),
                (
                    f"{results['files']} files: READY, inotify (s)",
                    f"{ti['ready_s']:.2f}",
                    "goal < 2",
                ),
                ("READY, poll (s)", f"{tp['ready_s']:.2f}", "goal < 2"),
                (
                    "RSS inotify / poll (MB)",
                    f"{ti['rss_mb']:.1f} / {tp['rss_mb']:.1f}",
                    "goal < 80",
                ),
                ("idle CPU inotify (%)", f"{ti['idle_cpu_percent']:.2f}", "goal < 0.2"),
                ("idle CPU poll @2s (%)", f"{tp['idle_cpu_percent']:.2f}", "goal < 5"),
                ("baseline PollingObserver CPU (%)", f"{tb['idle_cpu_percent']:.2f}", "baseline"),
                ("baseline PollingObserver RSS (MB)", f"{tb['rss_mb']:.1f}", "baseline"),
                (
                    "CPU ratio poll / baseline",
                    f"{tp['idle_cpu_percent'] / max(tb['idle_cpu_percent'], 1e-9):.3f}",
                    "",
                ),
                ("RSS ratio poll / baseline", f"{tp['rss_mb'] / tb['rss_mb']:.3f}", ""),
            ]
        )
    )
    out = REPO / "bench" / "results" / "watch.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
