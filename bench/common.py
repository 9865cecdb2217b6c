"""Shared helpers for the benchmarks: a daemon in a subprocess, CPU and RSS from /proc. The
test doubles (the wait, the fake ascp) are the tests' own, from tests/fakes.py."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from tests.fakes import SIMULATOR, simulator_wrapper, wait_until

__all__ = [
    "CLK_TCK",
    "REPO",
    "SIMULATOR",
    "count_state",
    "cpu_seconds",
    "idle_cost",
    "percentile",
    "rss_mb",
    "simulator_wrapper",
    "start_daemon",
    "summary",
    "table",
    "wait_for",
]

REPO = Path(__file__).resolve().parents[1]
wait_for = wait_until  # the benchmarks' name for it
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hotfolder", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def count_state(state_dir: Path, state: str) -> int:
    db = state_dir / "journal.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            row = conn.execute(
                "SELECT COUNT(*) FROM submissions WHERE state = ?", (state,)
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


def table(rows: list[tuple[str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:>14}  {goal}" for name, value, goal in rows)


def idle_cost(pid: int, seconds: float, settle: float = 5.0) -> tuple[float, float]:
    """(% of one core, RSS MB) of a process left alone for `seconds`, after `settle`."""
    time.sleep(settle)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu = 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    return cpu, rss_mb(pid)


OneRun = Callable[..., dict[str, float | int]]  # (base, *, fair, queued, workers) -> figures


def fair_share_runs(
    one_run: OneRun, description: str, results: Path, prefix: str, size: int, rate: float
) -> dict[str, dict[str, float | int]]:
    """The two fair-share benchmarks' common frame: read --queued and --workers, run with fair
    share and in arrival order in one temporary folder, save both with the set-up."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--queued", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    runs = {}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for name, fair in (("fair_share", True), ("arrival_order", False)):
            runs[name] = one_run(
                Path(tmp) / name, fair=fair, queued=args.queued, workers=args.workers
            )
    setup = {
        "queued_in_series": args.queued,
        "workers": args.workers,
        "bytes_per_submission": size,
        "simulated_link_bytes_s": rate,
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({"setup": setup, **runs}, indent=2) + "\n")
    return runs
