"""Fleet throughput (issue 13): submissions per minute through the ascp simulator, with a fixed
per-session set-up delay (ASCP_SIM_LOGIN_S, like a real SSH + FASP handshake), for 1, 2 and 3
nodes in one run, and the claim latency of an idle fleet.

One throwaway PostgreSQL (tests/pg.py), a fresh database for each node count; the nodes are
real `hotfolder run` processes (names a, b, c) on one drop folder in poll mode, each with
`workers: 1`, so the number of nodes is the only thing that scales.

1. throughput: `--submissions` small submissions dropped at once; first drop -> last
   `complete` in the database's history; goal: 3 nodes >= 2.7 x 1 node;
2. claim latency: `--latency-samples` submissions dropped one at a time into the idle fleet;
   for each, `ready` (history) -> the first session's start at the simulator (starts.jsonl),
   i.e. the moment a node spawned ascp, before the set-up delay; goal p95 < poll interval +
   1 s. Also shown: ready -> `sending-media` (the claim, from history), and ready -> first
   file byte (the start plus the set-up delay).

For the why, each count also reports where a submission's time goes (the medians of the
history's steps; the daemon's time either side of each simulator session), each node's window
split into head (first drop -> its first queued), deliveries, gaps between them and tail, and
the nodes' committed transactions per submission. Duplicated and out-of-order manifests are
judged by bench.torture_checks.check_sessions (must be 0). The host's load is recorded: other
work on a small host slows every spawn of the simulator.

    .venv/bin/python -m bench.fleet_throughput [--nodes 1,2,3] [--submissions 30]
        [--latency-samples 8] [--poll-interval 1.0] [--login 1.0] [--keep DIR]

Prints a table and writes bench/results/fleet_throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.rows import dict_row
from tests.pg import PgServer, pg_cluster

from bench.common import (
    REPO,
    percentile,
    simulator_wrapper,
    start_daemon,
    summary,
    table,
    wait_for,
)
from bench.torture import Result
from bench.torture_checks import FINAL_STATES, check_sessions, drop_submissions, sim_starts

RESULTS = REPO / "bench" / "results" / "fleet_throughput.json"
NODE_NAMES = ("a", "b", "c", "d", "e", "f")
GOAL_RATIO = 2.7
#: The steps of one delivery, in the order the history records them.
STEPS = ("ready", "queued", "sending-media", "media-sent", "sending-manifest", "complete")


@dataclass(frozen=True)
class Setup:
    nodes: tuple[int, ...]
    submissions: int
    latency_samples: int
    poll_interval: float
    login_s: float
    stability_s: float = 0.3
    sim_rate: float = 200e6  # bytes/s: the small files take milliseconds, the set-up dominates
    lease_s: float = 6.0
    seed: int = 13


# -- the fleet: folders, configs, processes --------------------------------------------------


@dataclass
class Fleet:
    """N nodes on one drop folder and one database, and the simulator they send to. The
    bench reads the database on a connection of its own, and counts its statements so that
    they can be told from the nodes' transactions."""

    root: Path
    db: str
    conn: psycopg.Connection[dict[str, Any]]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    queries: int = 0

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """One statement in autocommit: one committed transaction."""
        self.queries += 1
        try:
            return self.conn.execute(sql, args).fetchall()
        except psycopg.errors.UndefinedTable:  # before the first node made the schema
            return []


def node_config(root: Path, setup: Setup, name: str, url: str, wrapper: Path) -> Path:
    node = root / f"node-{name}"
    (node / "state").mkdir(parents=True)
    journal: dict[str, Any] = {
        "url": url,
        "node": name,
        "password_file": str(root / "journal.pass"),
    }
    journal["lease_seconds"] = setup.lease_s
    config = {
        "state_dir": str(node / "state"),
        "logging": {"target": "json", "level": "info"},
        "workers": 1,  # the node count is what scales
        "journal": journal,
        "watches": [
            {
                "name": "fleet",
                "path": str(root / "drop"),
                "target": "aspera",
                "mode": "poll",
                "poll_interval": setup.poll_interval,
                "stability_seconds": setup.stability_s,
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
                "retry": {"tries": 10, "initial_delay": 0.1, "factor": 2, "max_delay": 1},
            }
        },
    }
    path = node / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def fleet(root: Path, pg: PgServer, setup: Setup, count: int) -> Iterator[Fleet]:
    """Start `count` nodes on a fresh database; stop each by its pid on the way out."""
    for folder in ("drop", "server", "sim"):
        (root / folder).mkdir(parents=True)
    (root / "pw").write_text("pw\n")
    secret = root / "journal.pass"
    secret.write_text(pg.password + "\n")
    secret.chmod(0o600)
    env = {
        "ASCP_SIM_ROOT": str(root / "server"),
        "ASCP_SIM_STATE": str(root / "sim"),
        "ASCP_SIM_RATE": str(setup.sim_rate),
        "ASCP_SIM_PASSWORD": "pw",
        "ASCP_SIM_LOGIN_S": str(setup.login_s),
        "ASCP_SIM_RECORD_STARTS": "1",
    }
    wrapper = simulator_wrapper(root, env)
    db = pg.create_database()
    url = pg.app_url(db)
    conn = psycopg.connect(pg.url(db), password=pg.password, autocommit=True, row_factory=dict_row)
    run = Fleet(root, db, conn)
    try:
        for name in NODE_NAMES[:count]:
            config = node_config(root, setup, name, url, wrapper)
            run.procs[name] = start_daemon(config, root / f"node-{name}.log")
            wait_registered(run, name)  # one at a time: their start-ups do not race
        yield run
    finally:
        for proc in run.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in run.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        conn.close()


class NodeRefused(Exception):
    """A node exited at start (a bad config, or a node of its name still alive)."""


def wait_registered(run: Fleet, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = run.procs[name]
        if proc.poll() is not None:
            log = (run.root / f"node-{name}.log").read_text(errors="replace")
            raise NodeRefused(f"node {name} exited {proc.returncode}: {log[-600:]}")
        if run.query("SELECT 1 FROM nodes WHERE name = %s", (name,)):
            return
        time.sleep(0.05)
    raise NodeRefused(f"node {name} did not register within {timeout} s")


# -- what the database and the simulator recorded ---------------------------------------------


def final_count(run: Fleet, manifests: list[str]) -> int:
    (row,) = run.query(
        "SELECT count(*) AS n FROM submissions WHERE manifest = ANY(%s) AND state = ANY(%s)",
        (manifests, list(FINAL_STATES)),
    ) or [{"n": 0}]
    return int(row["n"])


def wait_final(run: Fleet, manifests: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if final_count(run, manifests) == len(manifests):
            return True
        if any(p.poll() is not None for p in run.procs.values()):
            return False
        time.sleep(0.1)
    return False


@dataclass(frozen=True)
class Delivery:
    """One submission as the database saw it: each step's first time (epoch s) and node."""

    id: str
    manifest: str
    state: str
    delivered_by: str | None
    at: dict[str, float]
    by: dict[str, str]


def deliveries(run: Fleet) -> dict[str, Delivery]:
    subs = run.query("SELECT id, manifest, state, delivered_by FROM submissions")
    history = run.query("SELECT submission_id, at, state, node FROM history ORDER BY seq")
    at: dict[str, dict[str, float]] = defaultdict(dict)
    by: dict[str, dict[str, str]] = defaultdict(dict)
    for line in history:
        sid, state = line["submission_id"], line["state"]
        if state not in at[sid]:  # the first time it reached the step
            at[sid][state] = datetime.fromisoformat(line["at"]).timestamp()
            by[sid][state] = line["node"]
    return {
        s["manifest"]: Delivery(
            s["id"], s["manifest"], s["state"], s["delivered_by"], at[s["id"]], by[s["id"]]
        )
        for s in subs
    }


def nodes_commits(pg: PgServer, run: Fleet) -> int:
    """Transactions the nodes committed in the run's database over the whole run (the bench's
    own statements taken off). Read once every connection to it is closed: a backend
    publishes its counts lazily while alive, and for certain as it exits. Read from another
    database, so the reading is not counted."""
    with psycopg.connect(pg.url(), password=pg.password, autocommit=True) as conn:

        def closed() -> bool:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            row = conn.execute(sql, (run.db,)).fetchone()
            return row is not None and row[0] == 0

        wait_for(closed, 30, "the nodes' connections to close")
        sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
        row = conn.execute(sql, (run.db,)).fetchone()
    return int(row[0]) - run.queries if row else 0


def first_session_start(root: Path) -> dict[str, float]:
    """Each manifest's first session start at the simulator (its media session)."""
    first: dict[str, float] = {}
    for start in sim_starts(root):
        for name in start["files"]:
            manifest = name.rsplit(".", 1)[0] + ".xml"
            first[manifest] = min(first.get(manifest, start["at"]), start["at"])
    return first


def sim_sessions(root: Path) -> list[dict[str, Any]]:
    """The simulator's record of each session that ended (started/ended once running)."""
    log = root / "sim" / "sessions.jsonl"
    records = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return [r for r in records if "ended" in r]


#: A session's kind (its --tags) -> the history steps just before and just after it.
AROUND = {"media": ("sending-media", "media-sent"), "manifest": ("sending-manifest", "complete")}


def around_sessions(records: list[dict[str, Any]], done: list[Delivery]) -> dict[str, list[float]]:
    """The daemon's time on either side of each session: from its journal step to the
    simulator running (spawning the wrapper, the interpreter), and from the simulator's end
    to the next journal step (DONE read, the step committed)."""
    by_id = {d.id: d for d in done}
    before, after = [], []
    for r in records:
        tag = json.loads(r.get("tags") or "{}").get("hotfolder", {})
        d = by_id.get(tag.get("submission", ""))
        steps = AROUND.get(tag.get("session", ""))
        if d is None or steps is None or not all(s in d.at for s in steps):
            continue
        before.append(r["started"] - d.at[steps[0]])
        after.append(d.at[steps[1]] - r["ended"])
    return {"step_to_sim_start": before, "sim_end_to_step": after}


# -- the measurements -------------------------------------------------------------------------


def step_medians(done: list[Delivery]) -> dict[str, float]:
    """Median seconds of each step of a delivery (from one history line to the next)."""
    medians = {}
    for a, b in itertools.pairwise(STEPS):
        spans = [d.at[b] - d.at[a] for d in done if a in d.at and b in d.at]
        medians[f"{a}->{b}"] = percentile(spans, 50)
    return medians


def handed_over(done: list[Delivery], step: str) -> int:
    """How many reached `step` on another node than the one that recorded them ready."""
    return sum(1 for d in done if step in d.by and d.by[step] != d.by.get("ready"))


def node_use(done: list[Delivery], window: tuple[float, float]) -> dict[str, dict[str, float]]:
    """Per node: deliveries, busy share of the window (queued -> complete), idle gaps between
    one complete and its next queued. The window is, for each node, exactly its head (first
    drop -> its first queued) + busy + gaps + tail (its last complete -> the window's end)."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for d in done:
        if "queued" in d.at and "complete" in d.at:
            spans[d.by["complete"]].append((d.at["queued"], d.at["complete"]))
    length = window[1] - window[0]
    use = {}
    for node, work in sorted(spans.items()):
        work.sort()
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(work)]
        busy = sum(e - s for s, e in work)
        use[node] = {
            "delivered": len(work),
            "busy_share": busy / length,
            "per_delivery_s": busy / len(work),
            "first_queued_s": work[0][0] - window[0],
            "gaps_s": sum(gaps),
            "gap_p50_s": percentile(gaps, 50),
            "gap_max_s": max(gaps) if gaps else float("nan"),
            "tail_s": window[1] - work[-1][1],
        }
    return use


def throughput(run: Fleet, setup: Setup, rng: random.Random) -> dict[str, Any]:
    first_drop = time.time()
    expected = drop_submissions(run.root, setup.submissions, rng)
    manifests = list(expected)
    settled = wait_final(run, manifests, timeout=60 + setup.submissions * (4 * setup.login_s + 3))
    found = deliveries(run)
    done = [found[m] for m in manifests if m in found and "complete" in found[m].at]
    if not done:
        return {"settled": False}
    last = max(d.at["complete"] for d in done)
    window = last - first_drop
    starts = first_session_start(run.root)
    judged = Result()
    check_sessions(run.root, expected, judged)
    steps = step_medians(done)
    records = sim_sessions(run.root)
    sessions = summary([r["ended"] - r["started"] for r in records])
    in_daemon = steps["sending-media->media-sent"] + steps["sending-manifest->complete"]
    return {
        "settled": settled,
        "complete": len(done),
        "seconds": window,
        "per_minute": len(done) * 60 / window,
        "first_complete_s": min(d.at["complete"] for d in done) - first_drop,
        "drop_to_ready": summary([d.at["ready"] - first_drop for d in done if "ready" in d.at]),
        "ready_to_first_session_loaded": summary(
            [starts[d.manifest] - d.at["ready"] for d in done if d.manifest in starts]
        ),
        "steps_p50_s": steps,
        "session_s": sessions,  # the simulator's own start -> end, set-up delay included
        # a session's step in the history minus the simulator's own time: spawning the
        # wrapper and the interpreter, the daemon's reading of DONE, its journal writes
        "outside_sim_per_session_s": (in_daemon - 2 * sessions["p50"]) / 2,
        **{k: summary(v) for k, v in around_sessions(records, done).items()},
        "nodes": node_use(done, (first_drop, last)),
        "queued_by_other_node": handed_over(done, "queued"),
        "duplicated": judged.duplicated,
        "out_of_order": judged.out_of_order,
        "notes": judged.notes[:10],
    }


def claim_latency(run: Fleet, setup: Setup, rng: random.Random) -> dict[str, Any]:
    """One submission at a time into the idle fleet; each waits for the one before."""
    claims, spawns, drops = [], [], []
    seen: list[Delivery] = []
    claimed_by: dict[str, int] = defaultdict(int)
    for i in range(setup.latency_samples):
        time.sleep(rng.uniform(0, setup.poll_interval))  # not in step with the nodes' polls
        dropped = time.time()
        (manifest,) = drop_submissions(run.root, 1, rng, offset=setup.submissions + i)
        if not wait_final(run, [manifest], timeout=30 + 4 * setup.login_s):
            break
        d = deliveries(run)[manifest]
        start = first_session_start(run.root).get(manifest)
        if "ready" not in d.at or start is None:
            continue
        drops.append(d.at["ready"] - dropped)
        claims.append(d.at.get("sending-media", float("nan")) - d.at["ready"])
        spawns.append(start - d.at["ready"])
        claimed_by[d.by.get("sending-media", "?")] += 1
        seen.append(d)
    goal = setup.poll_interval + 1.0
    return {
        "drop_to_ready": summary(drops),
        "ready_to_sending_media": summary(claims),
        "ready_to_first_session": summary(spawns),
        "ready_to_first_byte": summary([s + setup.login_s for s in spawns]),
        "goal_p95_s": goal,
        "met": percentile(spawns, 95) < goal,
        "claimed_by": dict(claimed_by),
        "claimed_by_other_node": handed_over(seen, "sending-media"),
    }


def one_count(root: Path, pg: PgServer, setup: Setup, count: int) -> dict[str, Any]:
    rng = random.Random(setup.seed)  # the same submissions for every count
    began = time.monotonic()
    try:
        with fleet(root, pg, setup, count) as run:
            loaded = throughput(run, setup, rng)
            idle = claim_latency(run, setup, rng)
    except NodeRefused as err:
        return {"refused": str(err)}
    commits = nodes_commits(pg, run)
    delivered = loaded.get("complete", 0) + idle["ready_to_first_session"]["n"]
    return {
        "throughput": loaded,
        "claim_latency": idle,
        "db": {
            "node_commits": commits,  # every transaction: steps, claims, heartbeats, polls
            "run_seconds": time.monotonic() - began,
            "per_submission": commits / delivered if delivered else float("nan"),
        },
    }


# -- report -------------------------------------------------------------------------------------


def settled(run: dict[str, Any]) -> bool:
    return bool(run.get("throughput", {}).get("settled"))


#: The window of each node: head + delivered x per delivery + gaps + tail.
PARTS = ("per_delivery_s", "first_queued_s", "gaps_s", "tail_s")


def mean(use: dict[str, dict[str, float]], key: str) -> float:
    return statistics.fmean(u[key] for u in use.values())


def count_rows(n: int, r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One node count's lines: the rate, where the time went, the idle fleet's claim."""
    t, c, db = r["throughput"], r["claim_latency"], r["db"]
    spawn, first_byte = c["ready_to_first_session"], c["ready_to_first_byte"]
    steps = t["steps_p50_s"]
    use = t["nodes"]
    return [
        (f"{n} node(s): submissions/min", f"{t['per_minute']:.1f}", "first drop -> last"),
        (
            "  first drop -> first / last complete s",
            f"{t['first_complete_s']:.1f} / {t['seconds']:.1f}",
            "",
        ),
        ("  delivered by node", " ".join(f"{k}:{v['delivered']}" for k, v in use.items()), ""),
        (
            "  busy share by node",
            " ".join(f"{k}:{v['busy_share']:.2f}" for k, v in use.items()),
            "queued -> complete / window",
        ),
        (
            "  per delivery / head / gaps / tail s",
            " / ".join(f"{mean(use, key):.2f}" for key in PARTS),
            "node means; sum = window",
        ),
        (
            "  p50 media / manifest session s",
            f"{steps['sending-media->media-sent']:.2f} / {steps['sending-manifest->complete']:.2f}",
            "history",
        ),
        (
            "  p50 step -> ascp running / ascp end -> step s",
            f"{t['step_to_sim_start']['p50']:.3f} / {t['sim_end_to_step']['p50']:.3f}",
            "spawn + interpreter / DONE + commit",
        ),
        ("  p50 ready->queued (load) s", f"{steps['ready->queued']:.2f}", "queue wait"),
        ("  duplicated / out of order", f"{t['duplicated']} / {t['out_of_order']}", "0 / 0"),
        ("  node DB commits per submission", f"{db['per_submission']:.0f}", "whole run"),
        (
            "  claim p50/p95 s (ready -> ascp start)",
            f"{spawn['p50']:.2f} / {spawn['p95']:.2f}",
            f"p95 < {c['goal_p95_s']:.1f}: {'met' if c['met'] else 'NOT met'}",
        ),
        ("  ready -> first byte p95 s", f"{first_byte['p95']:.2f}", "start + set-up delay"),
    ]


def report(
    setup: Setup, runs: dict[int, dict[str, Any]]
) -> tuple[list[tuple[str, str, str]], dict[str, float]]:
    rows: list[tuple[str, str, str]] = []
    for n, r in runs.items():
        if "refused" in r:
            rows.append((f"{n} node(s)", "refused", r["refused"].splitlines()[0][:60]))
        elif not settled(r):
            done = r["throughput"].get("complete", 0)
            rows.append((f"{n} node(s)", "did not settle", f"{done} of {setup.submissions}"))
        else:
            rows += count_rows(n, r)
    rates = {n: r["throughput"]["per_minute"] for n, r in runs.items() if settled(r)}
    ratios = {f"{n}_to_1": rates[n] / rates[1] for n in rates if n != 1 and 1 in rates}
    for name, ratio in ratios.items():
        n = int(name.split("_")[0])
        verdict = f">= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'NOT met'}"
        rows.append((f"{n} nodes / 1 node", f"{ratio:.2f}", verdict if n == 3 else ""))
    return rows, ratios


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--latency-samples", type=int, default=8)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--login", type=float, default=1.0, help="ASCP_SIM_LOGIN_S")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = parser.parse_args()
    setup = Setup(
        nodes=tuple(int(n) for n in args.nodes.split(",")),
        submissions=args.submissions,
        latency_samples=args.latency_samples,
        poll_interval=args.poll_interval,
        login_s=args.login,
    )
    started, load_before = time.monotonic(), load()
    runs: dict[int, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hf-fleet-bench-")))
        else:
            tmp = args.keep
            tmp.mkdir(parents=True)
        pg = stack.enter_context(pg_cluster())
        for count in setup.nodes:
            runs[count] = one_count(tmp / f"n{count}", pg, setup, count)
    rows, ratios = report(setup, runs)
    # Other work on the host slows the simulator's and the daemons' start-up: say how busy it was.
    host = {"cores": os.cpu_count(), "load_1min_before": load_before, "load_1min_after": load()}
    print(table(rows))
    print(f"wall: {time.monotonic() - started:.0f} s, host: {host}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "setup": asdict(setup),
        "ratios": ratios,
        "host": host,
        **{f"{n}_nodes": r for n, r in runs.items()},
    }
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
