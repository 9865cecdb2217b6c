"""Many small submissions dropped at once into one watch, against the physical floor.

For each size (500, 2,000, 5,000 by default) the daemon runs in a subprocess with a local
target; all submissions (a 1 KB video and its manifest each) are written into the drop folder
at once, and the clock runs from the first file written to the last `complete` committed.
The floor is measured in the same run on the same disk: a bare Journal committing, on one
thread, the same transitions a delivery commits (pending, ready, queued, sending-media,
media-sent, sending-manifest, progress, complete, postprocessed, manifest removed), each its
own fsync'd transaction.

Goal (issue 16 item 13): at 5,000, throughput at least half of the floor, and the last tenth of
the submissions (by completion) delivered no slower than the first tenth.

    .venv/bin/python -m bench.throughput [--sizes 500 2000 5000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import yaml

from bench.common import REPO, count_state, start_daemon, table, wait_for
from hotfolder.model import FileIdentity, ManifestFormat, State, Submission, SubmissionFile
from hotfolder.state.journal import Journal

RESULTS = REPO / "bench" / "results" / "throughput.json"
VIDEO = b"v" * 1024


def manifest_text(i: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:media="http://search.yahoo.com/mrss/" version="2.0"><channel><item>'
        f'<guid>g{i}</guid><media:content url="s{i}.mov"/><media:title>T{i}</media:title>'
        "</item></channel></rss>\n"
    )


def journal_floor(base: Path, n: int) -> float:
    """Submissions per second the journal alone commits, the same transitions each."""
    journal = Journal(base / "floor" / "journal.sqlite")
    ident = FileIdentity(1024, 1, 1, 1, 1)
    steps = (State.QUEUED, State.SENDING_MEDIA, State.MEDIA_SENT, State.SENDING_MANIFEST)
    started = time.perf_counter()
    for i in range(n):
        sid = f"s{i}"
        now = datetime.now(UTC)
        media = SubmissionFile(PurePosixPath(f"s{i}.mov"), PurePosixPath(f"s{i}.mov"), ident)
        man = SubmissionFile(PurePosixPath(f"s{i}.xml"), PurePosixPath(f"s{i}.xml"), ident)
        sub = Submission(sid, "w", man, (media,), ManifestFormat.OOYALA_MRSS)
        journal.record_pending(sid, "w", man.relpath, now, {})
        journal.record_ready(sub, now, {"assets": []})
        for state in steps:
            journal.transition(sid, state, now)
        journal.progress(sid, 2048)
        journal.transition(sid, State.COMPLETE, now)
        journal.mark_postprocessed(sid, now, "archive: 2 files")
        journal.mark_manifest_removed(sid)
    elapsed = time.perf_counter() - started
    journal.close()
    return n / elapsed


def write_config(base: Path) -> Path:
    for name in ("drop", "ingest", "archive", "failed", "state"):
        (base / name).mkdir(parents=True, exist_ok=True)
    data = {
        "state_dir": str(base / "state"),
        "logging": {"target": "json", "level": "info"},
        "min_free_bytes": 0,
        "watches": [{
            "name": "w", "path": str(base / "drop"), "target": "nas", "mode": "inotify",
            "stability_seconds": 0.5, "after_success": "archive",
            "archive_dir": str(base / "archive"), "failed_dir": str(base / "failed"),
        }],
        "targets": {"nas": {"type": "local", "path": str(base / "ingest")}},
    }  # fmt: skip
    path = base / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def completion_times(state_dir: Path) -> list[float]:
    with sqlite3.connect(state_dir / "journal.sqlite") as db:
        rows = db.execute(
            "SELECT MIN(at) FROM history WHERE state = 'complete' GROUP BY submission_id"
        ).fetchall()
    return sorted(datetime.fromisoformat(at).timestamp() for (at,) in rows)


def daemon_run(base: Path, n: int) -> dict[str, float]:
    cfg = write_config(base)
    proc = start_daemon(cfg, base / "daemon.log")
    try:
        log = base / "daemon.log"
        wait_for(lambda: '"event": "ready"' in log.read_text(errors="replace"), 30, "ready")
        started = time.time()
        drop = base / "drop"
        for i in range(n):
            (drop / f"s{i}.mov").write_bytes(VIDEO)
            (drop / f"s{i}.xml").write_text(manifest_text(i))
        wait_for(lambda: count_state(base / "state", "complete") >= n, 60 + n * 0.2, "all done")
        times = completion_times(base / "state")
    finally:
        proc.terminate()
        proc.wait(60)
    tenth = max(n // 10, 1)
    first = times[tenth - 1] - started
    last = times[-1] - times[-tenth - 1] if n > tenth else times[-1] - started
    return {
        "seconds": times[-1] - started,
        "per_second": n / (times[-1] - started),
        "first_tenth_s": first,
        "last_tenth_s": last,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    (REPO / ".cache").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO / ".cache") as tmp:  # the repo's disk
        base = Path(tmp)
        floor = journal_floor(base, 1000)
        for n in args.sizes:
            run = daemon_run(base / f"n{n}", n)
            run["floor_per_second"] = floor
            run["ratio_to_floor"] = run["per_second"] / floor
            results[str(n)] = run
            print(f"{n}: {json.dumps({k: round(v, 3) for k, v in run.items()})}", flush=True)
    rows = [("journal floor (submissions/s)", f"{floor:.1f}", "baseline, same disk")]
    for n, r in results.items():
        rows.append((f"{n} submissions (per s)", f"{r['per_second']:.1f}",
                     f"ratio to floor {r['ratio_to_floor']:.2f}"))  # fmt: skip
        rows.append((f"{n}: first / last tenth (s)",
                     f"{r['first_tenth_s']:.2f} / {r['last_tenth_s']:.2f}",
                     "last no slower than first"))  # fmt: skip
    big = results[str(max(args.sizes))]
    rows.append(("goal at the largest size", "", "ratio >= 0.5 and last <= first"))
    rows.append(("met", str(big["ratio_to_floor"] >= 0.5 and
                            big["last_tenth_s"] <= big["first_tenth_s"]), ""))  # fmt: skip
    print(table(rows))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
