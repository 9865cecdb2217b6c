"""Shared helpers for the benchmarks: a daemon in a subprocess, CPU and RSS from /proc."""

from __future__ import annotations

import os
import shlex
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


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


SIMULATOR = REPO / "tests" / "ascp_sim.py"


def simulator_wrapper(root: Path, env: dict[str, str], stamp_spawns: bool = False) -> Path:
    """An `ascp` that runs the simulator with `env`. With stamp_spawns, each spawn's time is
    appended to root/spawns.log before the simulator's interpreter starts."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    stamp = (
        f"echo $(date +%s.%N) >> {shlex.quote(str(root / 'spawns.log'))}\n" if stamp_spawns else ""
    )
    wrapper = root / "bin" / "ascp"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        f"#!/bin/sh\n{stamp}export {exports}\n"
        f'exec {shlex.quote(sys.executable)} {shlex.quote(str(SIMULATOR))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def idle_cost(pid: int, seconds: float, settle: float = 5.0) -> tuple[float, float]:
    """(% of one core, RSS MB) of a process left alone for `seconds`, after `settle`."""
    time.sleep(settle)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu = 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    return cpu, rss_mb(pid)
