"""Daemon overhead around ascp, measured against the simulator in one run.

1. gap between session 1's DONE and session 2's spawn (the manifest session), over N
   submissions; goal p95 < 50 ms;
2. the daemon's CPU while a long transfer streams STATS frames at 10/s; goal < 1 % of a core;
3. wall time of one large submission through the daemon vs the simulator run directly with
   the same files and the same two sessions (the baseline), on a simulated 400 MB/s link,
   median of interleaved runs; goal ratio < 1.01.

    .venv/bin/python bench/ascp_overhead.py [--size-mb 2048] [--runs 40] [--cpu-seconds 10]

Prints a table and writes bench/results/ascp.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    REPO,
    count_state,
    cpu_seconds,
    rss_mb,
    simulator_wrapper,
    start_daemon,
    summary,
    table,
    wait_for,
)
from hotfolder.transfer.faspmgr import FrameParser

MANIFEST = """<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><item>
<media:content url="{video}"/><guid>{video}</guid></item></channel></rss>
"""


def setup(root: Path, rate: float) -> Path:
    for folder in ("drop", "state", "sim", "bin"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    # The simulated server writes to RAM when it can: disk writeback would swamp what is
    # measured here (the daemon's overhead), and differ from one run to the next.
    shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp inside it, removed afterwards
    server = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else root, prefix="hf-server-"))
    (root / "server").symlink_to(server)
    (root / "pw").write_text("pw\n")
    env = {
        "ASCP_SIM_ROOT": str(root / "server"),
        "ASCP_SIM_STATE": str(root / "sim"),
        "ASCP_SIM_RATE": str(rate),
        "ASCP_SIM_PASSWORD": "pw",
    }
    wrapper = simulator_wrapper(root, env, stamp_spawns=True)
    config = {
        "state_dir": str(root / "state"),
        "logging": {"target": "json", "level": "warning"},
        "watches": [
            {
                "name": "bench",
                "path": str(root / "drop"),
                "target": "aspera",
                "stability_seconds": 0.2,
                "after_success": "delete",
            }
        ],
        "targets": {
            "aspera": {
                "type": "ascp",
                "host": "127.0.0.1",
                "user": "bench",
                "password_file": str(root / "pw"),
                "ascp_path": str(wrapper),
                "quota_bytes": 10**13,
            }
        },
    }
    path = root / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sessions(root: Path) -> list[dict[str, Any]]:
    log = root / "sim" / "sessions.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def make_source(path: Path, size: int) -> Path:
    """Real bytes, written once and read once, so every run reads them from the page cache:
    runs then differ only in what they are meant to compare."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.write(block[: size % len(block)])
    with open(path, "rb") as f:
        while f.read(8 * 1024 * 1024):
            pass
    return path


def drop(root: Path, name: str, size: int, source: Path | None = None) -> None:
    video = root / "drop" / f"{name}.mp4"
    if source is not None:
        os.link(source, video)  # the same cached bytes, under the drop folder
    else:
        with open(video, "wb") as f:
            f.write(os.urandom(size))
    (root / "drop" / f"{name}.xml").write_text(MANIFEST.format(video=video.name))


def completed(root: Path, n: int) -> Callable[[], bool]:
    return lambda: count_state(root / "state", "complete") >= n


def measure_gap(root: Path, runs: int) -> list[float]:
    config = setup(root, rate=1e12)
    daemon = start_daemon(config, root / "daemon.log")
    try:
        for i in range(runs):
            drop(root, f"gap{i:03}", 64 * 1024)
            wait_for(completed(root, i + 1), 60, "a submission to complete")
    finally:
        daemon.terminate()
        daemon.wait(60)
    done = sessions(root)
    spawns = [float(x) for x in (root / "spawns.log").read_text().split()]
    gaps = []
    for media, spawn in zip(done[0::2], spawns[1::2], strict=False):
        gaps.append((spawn - media["ended"]) * 1000)
    return gaps


def measure_cpu(root: Path, seconds: float) -> dict[str, float]:
    rate = 20e6
    config = setup(root, rate=rate)
    daemon = start_daemon(config, root / "daemon.log")
    try:
        wait_for((root / "state" / "journal.sqlite").exists, 30, "the daemon")
        time.sleep(1.0)  # the daemon's own start-up is not what this measures
        drop(root, "long", int(rate * seconds), make_source(root / "src.mp4", int(rate * seconds)))
        wait_for((root / "spawns.log").exists, 30, "the media session")
        time.sleep(0.5)
        cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
        wait_for(lambda: len(sessions(root)) >= 1, seconds * 3 + 30, "the media session end")
        cpu1, t1 = cpu_seconds(daemon.pid), time.monotonic()
        rss = rss_mb(daemon.pid)
        wait_for(lambda: count_state(root / "state", "complete") >= 1, 60, "completion")
    finally:
        daemon.terminate()
        daemon.wait(60)
    return {
        "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "seconds": t1 - t0,
        "rss_mb": rss,
        "stats_frames_per_s": 10.0,
    }


def through_daemon(root: Path, source: Path, rate: float) -> float:
    config = setup(root, rate=rate)
    daemon = start_daemon(config, root / "daemon.log")
    try:
        wait_for((root / "state" / "journal.sqlite").exists, 30, "the daemon")
        drop(root, "big", 0, source)
        wait_for(lambda: count_state(root / "state", "complete") >= 1, 3600, "completion")
    finally:
        daemon.terminate()
        daemon.wait(60)
    first_spawn = float((root / "spawns.log").read_text().split()[0])
    return float(sessions(root)[-1]["ended"]) - first_spawn


def cleanup(root: Path) -> None:
    server = root / "server"
    if server.is_symlink():
        shutil.rmtree(server.resolve(), ignore_errors=True)


def direct(root: Path, source: Path, rate: float) -> float:
    """The baseline: the same two sessions, simulator run straight from here."""
    setup(root, rate=rate)
    drop(root, "big", 0, source)
    env = {**os.environ, "ASPERA_SCP_PASS": "pw"}
    started = time.time()
    for name in ("big.mp4", "big.xml"):
        pairs = root / "pairs.list"
        pairs.write_text(f"{root / 'drop' / name}\n{name}\n")
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            # Through the same wrapper the daemon spawns, so only the daemon differs.
            child = subprocess.Popen(
                [
                    str(root / "bin" / "ascp"),
                    "--mode=send",
                    "--host=127.0.0.1",
                    "--user=bench",
                    "-k",
                    "2",
                    "--overwrite=diff",
                    f"--file-pair-list={pairs}",
                    "-M",
                    str(port),
                    "/",
                ],
                env=env,
            )
            conn, _ = listener.accept()
            parser = FrameParser()
            with conn:
                while data := conn.recv(65536):
                    parser.feed(data)
            child.wait()
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--link-mbs",
        type=float,
        default=400.0,
        help="simulated link speed for the wall-time comparison (MB/s)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hotfolder-bench-") as tmp:
        base = Path(tmp)
        gaps = summary(measure_gap(base / "gap", args.runs))
        cpu = measure_cpu(base / "cpu", args.cpu_seconds)
        # A link speed, as real Aspera sessions have: unthrottled, the copy into RAM is so
        # fast that page-allocation noise, not the daemon, decides the ratio.
        rate = args.link_mbs * 1e6
        source = make_source(base / "source" / "big.mp4", args.size_mb * 1024 * 1024)
        daemon_walls, direct_walls = [], []
        for i in range(args.repeats):  # interleaved, so drift hits both alike
            daemon_walls.append(through_daemon(base / f"daemon{i}", source, rate))
            cleanup(base / f"daemon{i}")
            direct_walls.append(direct(base / f"direct{i}", source, rate))
            cleanup(base / f"direct{i}")
        for name in ("gap", "cpu"):
            cleanup(base / name)
    daemon_wall = statistics.median(daemon_walls)
    direct_wall = statistics.median(direct_walls)
    ratio = daemon_wall / direct_wall
    results = {
        "cores": os.cpu_count(),
        "size_mb": args.size_mb,
        "link_mbs": args.link_mbs,
        "done_to_manifest_spawn_ms": gaps,
        "stats_cpu": cpu,
        "wall_daemon_s": daemon_wall,
        "wall_direct_s": direct_wall,
        "wall_ratio": ratio,
        "wall_daemon_runs_s": daemon_walls,
        "wall_direct_runs_s": direct_walls,
    }
    print(
        table(
            [
                ("DONE -> manifest spawn p50 (ms)", f"{gaps['p50']:.1f}", ""),
                ("DONE -> manifest spawn p95 (ms)", f"{gaps['p95']:.1f}", "goal < 50"),
                ("DONE -> manifest spawn max (ms)", f"{gaps['max']:.1f}", f"n={gaps['n']:.0f}"),
                ("daemon CPU during STATS @10/s (%)", f"{cpu['cpu_percent']:.2f}", "goal < 1"),
                ("daemon RSS during transfer (MB)", f"{cpu['rss_mb']:.1f}", ""),
                (
                    f"{args.size_mb} MB via daemon, median (s)",
                    f"{daemon_wall:.2f}",
                    f"runs {', '.join(f'{w:.2f}' for w in daemon_walls)}",
                ),
                (
                    f"{args.size_mb} MB simulator direct, median (s)",
                    f"{direct_wall:.2f}",
                    f"baseline; runs {', '.join(f'{w:.2f}' for w in direct_walls)}",
                ),
                ("wall ratio daemon/direct", f"{ratio:.3f}", "goal < 1.01"),
            ]
        )
    )
    out = REPO / "bench" / "results" / "ascp.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
