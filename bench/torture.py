"""kill -9 torture: the daemon is SIGKILLed at random moments (and right at chosen state
changes) while it delivers submissions through the ascp simulator, restarted each time, then
left to settle. Then, from the simulator's records and the file system:

- out_of_order: a manifest session started while a file the manifest names was not yet
  completely at the server;
- duplicated: a manifest session started for a manifest that had already fully arrived
  (an ingest server would have ingested it twice);
- lost: a submission neither delivered nor held/failed with a reason, or a source deleted
  from the drop folder whose bytes are not at the server;
- held, and of those held_needless: held although no byte of its manifest ever reached the
  server (goal: 0; a hold only where a manifest session really may have finished);
- escaped: a drop whose manifest names a file through a link out of the drop folder
  (`esc/lnk -> ../outside`) that did not end failed with the outside file untouched, unsent,
  and neither archived nor quarantined (issue 16, item 1).

Besides the kills, every third run pauses the daemon (SIGSTOP, 0.5-4 s, then SIGCONT) right
after it spawned a manifest session (issue 16, item 3): the ascp wrapper stops its own parent
the moment it starts, so the session runs while the daemon cannot look.

    .venv/bin/python -m bench.torture [--submissions 12] [--kills 100] [--seed 1]

Prints `runs, kills, pauses, lost, duplicated, out_of_order, held, held_needless` (lost,
duplicated and out_of_order must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.common import REPO, SIMULATOR
from bench.torture_checks import (
    FINAL_STATES,
    MANIFEST,
    check_outcomes,
    check_sessions,
    drop_submissions,
    sha256_of,
    sim_target,
)

#: States worth killing the daemon in, right as they are committed.
TARGET_STATES = ("sending-media", "media-sent", "sending-manifest", "complete")


@dataclass
class Result:
    runs: int = 0
    kills: int = 0
    pauses: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    held: int = 0
    held_needless: int = 0
    escaped: int = 0
    complete: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"runs={self.runs} kills={self.kills} pauses={self.pauses} lost={self.lost} "
            f"duplicated={self.duplicated} out_of_order={self.out_of_order} "
            f"held={self.held} held_needless={self.held_needless} escaped={self.escaped} "
            f"(complete={self.complete})"
        )


@dataclass(frozen=True)
class Escape:
    """A drop that tries to reach out of the drop folder through a link in its path."""

    manifest: str  # relative to the drop folder
    outside: Path  # the file it names, outside the drop folder
    digest: str


def drop_escape(root: Path, rng: random.Random, index: int) -> Escape:
    outside = root / f"outside{index:03}"
    outside.mkdir()
    secret = outside / "secret.mp4"
    secret.write_bytes(rng.randbytes(50_000))
    folder = root / "drop" / f"esc{index:03}"
    folder.mkdir()
    (folder / "lnk").symlink_to(outside)
    (folder / "t.jpg").write_bytes(rng.randbytes(2_000))  # valid in every other way
    manifest = MANIFEST.format(video="lnk/secret.mp4", thumb="t.jpg", name=f"e{index}")
    (folder / "m.xml").write_text(manifest)
    return Escape(f"esc{index:03}/m.xml", secret, sha256_of(secret))


PAUSE_FLAG = "pause-next"


def setup(root: Path, rate: float) -> Path:
    for folder in ("drop", "server", "state", "sim", "bin"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "pw").write_text("pw\n")
    env = {
        "ASCP_SIM_ROOT": str(root / "server"),
        "ASCP_SIM_STATE": str(root / "sim"),
        "ASCP_SIM_RATE": str(rate),
        "ASCP_SIM_PASSWORD": "pw",
        "ASCP_SIM_RECORD_STARTS": "1",
    }
    wrapper = pausing_wrapper(root, env)
    config = {
        "state_dir": str(root / "state"),
        "logging": {"target": "json", "level": "info"},
        "watches": [
            {
                "name": "torture",
                "path": str(root / "drop"),
                "target": "aspera",
                "stability_seconds": 0.3,
                "after_success": "delete",
            }
        ],
        "targets": {"aspera": sim_target(root, wrapper)},
    }
    path = root / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def pausing_wrapper(root: Path, env: dict[str, str]) -> Path:
    """An `ascp` that runs the simulator; for a manifest session, when the torture left a
    pause flag, it first stops its parent (the daemon) and has a detached helper continue it
    after the flag's seconds: the daemon is paused right after the spawn, as on a busy host."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    flag = shlex.quote(str(root / PAUSE_FLAG))
    taken = shlex.quote(str(root / "pause-taken"))
    wrapper = root / "bin" / "ascp"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"export {exports}\n"
        'case " $* " in *" --file-manifest=text "*)\n'
        f"  if mv {flag} {taken} 2>/dev/null; then\n"
        f"    seconds=$(cat {taken}); echo $$ >> {shlex.quote(str(root / 'pauses.log'))}\n"
        "    kill -STOP $PPID\n"
        '    setsid sh -c "sleep $seconds; kill -CONT $PPID" </dev/null >/dev/null 2>&1 &\n'
        "  fi;;\n"
        "esac\n"
        f'exec {shlex.quote(sys.executable)} {shlex.quote(str(SIMULATOR))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def pause_after_spawn(
    daemon: subprocess.Popen[bytes], root: Path, rng: random.Random, result: Result
) -> None:
    """Arm the wrapper's pause; once it was taken, let the daemon resume and run a little."""
    seconds = rng.uniform(0.5, 4.0)
    (root / PAUSE_FLAG).write_text(f"{seconds:.2f}")
    deadline = time.monotonic() + 8.0
    while (root / PAUSE_FLAG).exists() and time.monotonic() < deadline:
        if daemon.poll() is not None:
            return
        time.sleep(0.01)
    if (root / PAUSE_FLAG).exists():
        (root / PAUSE_FLAG).unlink(missing_ok=True)  # no manifest session came
        return
    result.pauses += 1
    time.sleep(seconds + rng.uniform(0.2, 1.5))


def start(config: Path, root: Path, run: int) -> subprocess.Popen[bytes]:
    with open(root / f"daemon-{run:03}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hotfolder", "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def states(root: Path) -> dict[str, str]:
    db = root / "state" / "journal.sqlite"
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return dict(conn.execute("SELECT manifest, state FROM submissions").fetchall())
    except sqlite3.Error:
        return {}


def kill_at_random(rng: random.Random) -> None:
    time.sleep(rng.uniform(0.05, 1.2))


def kill_at_state(
    daemon: subprocess.Popen[bytes], root: Path, state: str, timeout: float = 3.0
) -> None:
    """Kill right after some submission is committed in `state` (polls the journal)."""
    before = {k for k, v in states(root).items() if v == state}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and daemon.poll() is None:
        now = {k for k, v in states(root).items() if v == state}
        if now - before:
            return
        time.sleep(0.002)


def settled(root: Path, expected: dict[str, dict[str, str]]) -> bool:
    current = states(root)
    return all(current.get(m) in FINAL_STATES for m in expected)


def torture(
    root: Path,
    submissions: int,
    kills: int,
    seed: int,
    rate: float = 8e6,
    settle_timeout: float = 300,
) -> Result:
    rng = random.Random(seed)
    config = setup(root, rate)
    expected = drop_submissions(root, submissions, rng)
    escapes = [drop_escape(root, rng, i) for i in range(2)]
    result = Result()
    for run in range(kills):
        if settled(root, expected):
            # Everything is delivered already: drop more work so the kills keep biting.
            expected.update(drop_submissions(root, 3, rng, offset=len(expected)))
            escapes.append(drop_escape(root, rng, len(escapes)))
        daemon = start(config, root, run)
        result.runs += 1
        if run % 3 == 2:
            pause_after_spawn(daemon, root, rng, result)
        elif run % 2:
            kill_at_state(daemon, root, rng.choice(TARGET_STATES))
        else:
            kill_at_random(rng)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGKILL)
            result.kills += 1
        daemon.wait()
    daemon = start(config, root, kills)
    result.runs += 1
    deadline = time.monotonic() + settle_timeout
    while not settled(root, {**expected, **{e.manifest: {} for e in escapes}}):
        if time.monotonic() > deadline:
            result.notes.append("did not settle in time")
            break
        time.sleep(0.1)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(60)
    check(root, expected, result)
    check_escapes(root, escapes, result)
    return result


def check(root: Path, expected: dict[str, dict[str, str]], result: Result) -> None:
    check_sessions(root, expected, result)
    check_outcomes(root, expected, states(root), result)


def check_escapes(root: Path, escapes: list[Escape], result: Result) -> None:
    final = states(root)
    for escape in escapes:
        problems = []
        if final.get(escape.manifest) != "failed":
            problems.append(f"ended {final.get(escape.manifest)}")
        if not escape.outside.exists() or sha256_of(escape.outside) != escape.digest:
            problems.append("the outside file was moved, deleted or changed")
        if problems:
            result.escaped += 1
            result.notes.append(f"{escape.manifest}: {'; '.join(problems)}")
    # A copy anywhere but in the outside folders (the server, the archive, failed/, state).
    for copy in root.rglob("secret.mp4"):
        if not copy.parent.name.startswith("outside") and not copy.is_relative_to(root / "drop"):
            result.escaped += 1
            result.notes.append(f"{copy.relative_to(root)}: a file from outside reached it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hotfolder-torture-") as tmp:
        started = time.monotonic()
        result = torture(Path(tmp), args.submissions, args.kills, args.seed)
    print(result.line())
    print(
        "runs, kills, pauses, lost, duplicated, out_of_order, held, held_needless, escaped = "
        f"{result.runs}, {result.kills}, {result.pauses}, {result.lost}, "
        f"{result.duplicated}, {result.out_of_order}, {result.held}, {result.held_needless}, "
        f"{result.escaped}"
    )
    for note in result.notes[:20]:
        print("  note:", note)
    print(f"wall: {time.monotonic() - started:.0f} s, cores: {os.cpu_count()}")
    out = REPO / "bench" / "results" / "torture.json"
    out.write_text(
        json.dumps(
            {**result.__dict__, "seed": args.seed, "submissions": args.submissions}, indent=2
        )
        + "\n"
    )
    sys.exit(
        0 if result.lost == result.duplicated == result.out_of_order == result.escaped == 0 else 1
    )


if __name__ == "__main__":
    main()
