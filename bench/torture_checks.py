"""The kill -9 tortures' drops and verdicts, shared by bench/torture.py (one daemon, SQLite)
and bench/fleet_torture.py (three nodes, PostgreSQL): what is dropped, and how the simulator's
records and the final states are judged. Moved here unchanged from bench/torture.py; only
`check_outcomes` now takes the final states from its caller, since each torture reads them
from its own journal.

- out_of_order: a manifest session started while a file the manifest names was not yet
  completely at the server (or a manifest that shared its session);
- duplicated: a manifest session started for a manifest that had already fully arrived, or a
  manifest renamed into place twice (an ingest server would have ingested it twice);
- lost: a submission not in a final state, or a source deleted from the drop folder whose
  bytes are not at the server, or a complete one whose files are not there;
- held, and of those held_needless: held although no byte of its manifest ever reached the
  server.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Protocol

FINAL_STATES = ("complete", "failed", "held")
MANIFEST = """<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><item>
<media:content url="{video}"/><media:thumbnail url="{thumb}"/><guid>{name}</guid>
</item></channel></rss>
"""
#: Each manifest's name (relative to the drop folder) -> its files' names -> their sha256.
Expected = dict[str, dict[str, str]]


class Tally(Protocol):
    """The counters a verdict adds to (each torture's result has them, and more)."""

    lost: int
    duplicated: int
    out_of_order: int
    held: int
    held_needless: int
    complete: int
    notes: list[str]


def drop_submissions(root: Path, count: int, rng: random.Random, offset: int = 0) -> Expected:
    """Media first, manifest last; returns each manifest's files and their sha256."""
    expected = {}
    for i in range(offset, offset + count):
        name = f"sub{i:03}"
        files = {
            f"{name}.mp4": rng.randbytes(rng.randint(200_000, 1_500_000)),
            f"{name}.jpg": rng.randbytes(rng.randint(1_000, 20_000)),
        }
        for fname, data in files.items():
            (root / "drop" / fname).write_bytes(data)
        manifest = MANIFEST.format(video=f"{name}.mp4", thumb=f"{name}.jpg", name=name)
        (root / "drop" / f"{name}.xml").write_text(manifest)
        files[f"{name}.xml"] = manifest.encode()
        expected[f"{name}.xml"] = {f: hashlib.sha256(d).hexdigest() for f, d in files.items()}
    return expected


def sim_starts(root: Path) -> list[dict[str, Any]]:
    log = root / "sim" / "starts.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(x) for x in lines if x.strip()]


def sim_landed(root: Path) -> list[dict[str, Any]]:
    log = root / "sim" / "landed.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(x) for x in lines if x.strip()]


def check_sessions(root: Path, expected: Expected, result: Tally) -> None:
    """From the simulator's records: manifests sent twice, or before their media."""
    for start in sim_starts(root):
        for name in start["files"]:
            # The manifest's source is a staged copy that appears only once the daemon opens
            # the gate, so "already there" is judged at the server, by name.
            if name.endswith(".xml") and start["server_complete"].get(name):
                result.duplicated += 1
                result.notes.append(f"session {start['session']} re-sent {name}")
        manifests = [n for n in start["files"] if n.endswith(".xml")]
        for m in manifests:
            if len(start["files"]) > 1:
                result.out_of_order += 1
                result.notes.append(f"session {start['session']}: {m} shared a session")
            for media in expected.get(m, {}):
                if media != m and not start["server_complete"].get(media, False):
                    result.out_of_order += 1
                    result.notes.append(f"session {start['session']}: {m} before {media}")
    landings: dict[str, int] = {}
    for landed in sim_landed(root):
        landings[landed["name"]] = landings.get(landed["name"], 0) + 1
    for name, count in landings.items():
        if name.endswith(".xml") and count > 1:
            result.duplicated += count - 1
            result.notes.append(f"{name} landed {count} times")


def check_outcomes(root: Path, expected: Expected, final: dict[str, str], result: Tally) -> None:
    """From the final states (manifest -> state) and the server: lost submissions, and holds
    without a cause."""
    server = root / "server"
    for manifest, files in expected.items():
        state = final.get(manifest)
        result.complete += state == "complete"
        result.held += state == "held"
        partial = server / f"{manifest}.partial"
        if state == "held" and not (server / manifest).exists() and not partial.exists():
            result.held_needless += 1
            result.notes.append(f"{manifest}: held, but no byte of it reached the server")
        if state not in ("complete", "held", "failed"):
            result.lost += 1
            result.notes.append(f"{manifest}: ended {state}")
            continue
        for fname, digest in files.items():
            at_server = server / fname
            gone = not (root / "drop" / fname).exists()
            arrived = at_server.exists() and sha256_of(at_server) == digest
            if gone and not arrived and state != "failed":
                result.lost += 1
                result.notes.append(f"{fname}: source deleted but not at the server")
            if state == "complete" and not arrived:
                result.lost += 1
                result.notes.append(f"{fname}: complete but not at the server")


def sim_target(root: Path, wrapper: Path) -> dict[str, Any]:
    """The ascp simulator as the tortures' target (through `wrapper`), retrying fast."""
    return {
        "type": "ascp",
        "host": "127.0.0.1",
        "user": "t",
        "password_file": str(root / "pw"),
        "ascp_path": str(wrapper),
        "retry": {"tries": 20, "initial_delay": 0.05, "factor": 2, "max_delay": 0.5},
    }


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
