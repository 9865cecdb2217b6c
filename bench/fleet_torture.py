"""kill -9 torture for a fleet (issue 13): three nodes (a, b, c), each a real `hotfolder run`
process with its own state_dir, poll the same drop folder and deliver through the ascp
simulator under claims in one throwaway PostgreSQL. Nodes are SIGKILLed at random moments,
and right after a submission they own is committed in a chosen state; each killed node comes
back after a random pause of 0-3 s. PostgreSQL itself is stopped (`pg_ctl -m immediate`) and
started again a few times during the run. A short lease makes takeovers happen within it.

Judged exactly like bench/torture.py (bench/torture_checks.py): lost, duplicated and
out_of_order must be 0; held and held_needless are reported, with the number of takeovers
(history lines "taken over from ...") and how many submissions each node delivered; also
strays: rows left unfinished beside a final row for the same manifest (a node keyed a row by
a half-written manifest's identity), reported but not failed.

    .venv/bin/python -m bench.fleet_torture [--nodes 3] [--submissions 24] [--kills 100]
        [--pg-restarts 2] [--lease-seconds 5] [--seed 1] [--keep]

Writes bench/results/fleet_torture.json. Exits 1 if anything was lost, duplicated or sent out
of order; the run's folder (logs, simulator records, the journal's tables as TSV) is then
kept and its path printed (with --keep, always).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from tests.pg import PgServer, pg_cluster

from bench.common import REPO, simulator_wrapper, start_daemon
from bench.torture import TARGET_STATES
from bench.torture_checks import (
    FINAL_STATES,
    Expected,
    check_outcomes,
    check_sessions,
    drop_submissions,
    sim_target,
)

NODE_NAMES = "abcdefgh"
RESULTS = REPO / "bench" / "results" / "fleet_torture.json"
TICK = 0.02  # how often the harness looks (journal, processes) while it waits


@dataclass
class FleetResult:
    nodes: int
    kills: int = 0
    kills_at_state: int = 0
    pg_restarts: int = 0
    exits: int = 0  # node processes that ended by themselves (restarted like killed ones)
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    held: int = 0
    held_needless: int = 0
    complete: int = 0
    failed: int = 0
    takeovers: int = 0
    not_cleaned: int = 0  # complete, but its manifest is still in the drop folder
    strays: int = 0  # rows left unfinished beside another row for the same manifest
    delivered_by: dict[str, int] = field(default_factory=dict)
    submissions: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return bool(self.lost or self.duplicated or self.out_of_order)

    def line(self) -> str:
        return (
            f"nodes={self.nodes} kills={self.kills} (at a state: {self.kills_at_state}) "
            f"pg_restarts={self.pg_restarts} exits={self.exits} lost={self.lost} "
            f"duplicated={self.duplicated} out_of_order={self.out_of_order} held={self.held} "
            f"held_needless={self.held_needless} takeovers={self.takeovers} "
            f"(submissions={self.submissions} complete={self.complete} failed={self.failed} "
            f"not_cleaned={self.not_cleaned} strays={self.strays}) "
            f"delivered_by={self.delivered_by}"
        )


@dataclass
class Node:
    """One fleet node: a `hotfolder run` process, started, killed and restarted by pid."""

    name: str
    config: Path
    logs: Path
    proc: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None  # when a killed (or exited) node comes back
    runs: int = 0

    def start(self) -> None:
        self.proc = start_daemon(self.config, self.logs / f"{self.name}-{self.runs:03}.log")
        self.runs += 1
        self.restart_at = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILL; False if it had already ended."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return True

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()


class FleetView:
    """The harness's own look at the fleet journal (the app role, autocommit): reconnects
    after a PostgreSQL restart and answers empty while the server is down."""

    def __init__(self, url: str, password: str) -> None:
        self.url, self.password = url, password
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _rows(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.url, password=self.password, autocommit=True, connect_timeout=2
                )
            return self._conn.execute(query, params or None).fetchall()  # None: '%' is text
        except psycopg.errors.UndefinedTable:  # no node has made the schema yet
            return []
        except (psycopg.OperationalError, psycopg.InterfaceError):  # the server is away
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            return []

    def states(self) -> dict[str, str]:
        """Manifest -> the state of its submission. A manifest with several rows (a node that
        saw it half-written keyed a row by that identity) is judged by a final one, if any:
        the others are `strays`."""
        states: dict[str, str] = {}
        for manifest, state in self._rows("SELECT manifest, state FROM submissions"):
            if states.get(manifest) not in FINAL_STATES:
                states[str(manifest)] = str(state)
        return states

    def strays(self) -> list[tuple[str, str, str, str]]:
        """(manifest, id, state, node) of the rows not in a final state beside another row
        for the same manifest: nobody will ever move them on."""
        return [
            (str(m), str(i), str(s), str(n))
            for m, i, s, n in self._rows(
                "SELECT manifest, id, state, node FROM submissions s WHERE state <> ALL(%s) "
                "AND EXISTS (SELECT 1 FROM submissions o WHERE o.manifest = s.manifest "
                "AND o.id <> s.id) ORDER BY manifest, id",
                (list(FINAL_STATES),),
            )
        ]

    def owners_in(self, state: str) -> dict[str, str | None]:
        """Submission id -> the node that holds it (or, once complete and given back, the one
        that delivered it: it is still archiving or deleting), of the rows in `state`."""
        rows = self._rows(
            "SELECT id, coalesce(owner, delivered_by) FROM submissions WHERE state = %s", (state,)
        )
        return {str(i): o for i, o in rows}

    def takeovers(self) -> int:
        rows = self._rows("SELECT count(*) FROM history WHERE note LIKE 'taken over from %'")
        return int(rows[0][0]) if rows else 0

    def delivered_by(self) -> dict[str, int]:
        rows = self._rows(
            "SELECT coalesce(delivered_by, '-'), count(*) FROM submissions "
            "WHERE state = 'complete' GROUP BY 1 ORDER BY 1"
        )
        return {str(n): int(c) for n, c in rows}

    def dump(self, folder: Path) -> None:
        """The journal's tables as TSV, for the evidence of a failed run."""
        for table, order in (("submissions", "created_at, id"), ("history", "seq")):
            rows = self._rows(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608 - ours
            text = "\n".join("\t".join(str(v) for v in row) for row in rows)
            (folder / f"{table}.tsv").write_text(text + "\n")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@dataclass
class Run:
    """One torture run's moving parts: where it lives, its nodes, the journal and its server."""

    root: Path
    nodes: list[Node]
    view: FleetView
    pg: PgServer
    rng: random.Random
    result: FleetResult
    expected: Expected = field(default_factory=dict)

    def tend(self) -> None:
        """Bring back nodes whose pause is over; a node that ended by itself (not killed by
        us) is noted and comes back after a second, like a unit with Restart=on-failure."""
        now = time.monotonic()
        for node in self.nodes:
            if node.proc is not None and node.restart_at is None and not node.alive:
                self.result.exits += 1
                self.result.notes.append(
                    f"node {node.name} run {node.runs - 1} exited by itself "
                    f"(rc {node.proc.returncode})"
                )
                node.restart_at = now + 1.0
            if node.restart_at is not None and now >= node.restart_at:
                node.start()

    def wait(self, seconds: float, until: Callable[[], object] | None = None) -> object:
        """Wait up to `seconds` (tending the nodes) or until `until()` answers truthy."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.tend()
            if until is not None and (found := until()):
                return found
            time.sleep(TICK)
        return None

    def settled(self) -> bool:
        final = self.view.states()
        return all(final.get(m) in FINAL_STATES for m in self.expected)

    def kill(self, node: Node) -> None:
        if node.kill():
            self.result.kills += 1
        node.restart_at = time.monotonic() + self.rng.uniform(0.0, 3.0)

    def kill_random(self) -> None:
        """After 0.3-2.5 s, one of the living nodes (waiting for one to be back if none is)."""
        self.wait(self.rng.uniform(0.3, 2.5))
        self.wait(5.0, lambda: any(n.alive for n in self.nodes))
        living = [n for n in self.nodes if n.alive]
        if living:
            self.kill(self.rng.choice(living))

    def kill_at_state(self, state: str, timeout: float = 4.0) -> bool:
        """Kill the node that owns a submission right after it is committed in `state`."""
        before = set(self.view.owners_in(state))
        by_name = {n.name: n for n in self.nodes}

        def owner_of_a_new_one() -> Node | None:
            for sid, owner in self.view.owners_in(state).items():
                node = by_name.get(owner or "")
                if sid not in before and node is not None and node.alive:
                    return node
            return None

        found = self.wait(timeout, owner_of_a_new_one)
        if not isinstance(found, Node):
            return False
        self.kill(found)
        self.result.kills_at_state += 1
        return True

    def restart_postgres(self) -> None:
        """Stop -m immediate, stay down 0.5-3 s (nodes keep running and being tended), start
        on the same port."""
        self.pg.stop()
        self.wait(self.rng.uniform(0.5, 3.0))
        self.pg.start()
        self.result.pg_restarts += 1


def node_config(root: Path, name: str, url: str, wrapper: Path, lease: float) -> Path:
    journal: dict[str, object] = {
        "url": url,
        "node": name,
        "password_file": str(root / "journal.pass"),
    }
    journal["lease_seconds"] = lease
    config = {
        "state_dir": str(root / f"state-{name}"),
        "logging": {"target": "json", "level": "info"},
        "journal": journal,
        "watches": [
            {
                "name": "torture",
                "path": str(root / "drop"),
                "target": "aspera",
                "mode": "poll",
                "poll_interval": 0.2,
                "stability_seconds": 0.3,
                "after_success": "delete",
            }
        ],
        "targets": {"aspera": sim_target(root, wrapper)},
    }
    path = root / f"node-{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def setup(root: Path, pg: PgServer, nodes: int, lease: float, rate: float) -> list[Node]:
    for folder in ("drop", "server", "sim", "logs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "pw").write_text("pw\n")
    secret = root / "journal.pass"
    secret.write_text(pg.password + "\n")
    secret.chmod(0o600)
    wrapper = simulator_wrapper(
        root,
        {
            "ASCP_SIM_ROOT": str(root / "server"),
            "ASCP_SIM_STATE": str(root / "sim"),
            "ASCP_SIM_RATE": str(rate),
            "ASCP_SIM_PASSWORD": "pw",
            "ASCP_SIM_RECORD_STARTS": "1",
        },
    )
    url = pg.app_url(pg.create_database())
    return [
        Node(name, node_config(root, name, url, wrapper, lease), root / "logs")
        for name in NODE_NAMES[:nodes]
    ]


def torture(run: Run, kills: int, pg_restarts: int, settle_timeout: float) -> None:
    """The kills (every other one right at a state change, by the submission's owner), the
    PostgreSQL restarts spread evenly among them, then every node up until all settled."""
    restarts_at = [round(kills * (i + 1) / (pg_restarts + 1)) for i in range(pg_restarts)]
    for node in run.nodes:
        node.start()
    attempt = 0
    while run.result.kills < kills and attempt < 3 * kills:  # a kill lands on a living node
        if restarts_at and run.result.kills >= restarts_at[0]:
            restarts_at.pop(0)
            run.restart_postgres()
        if run.settled():
            # Everything is delivered already: drop more work so the kills keep biting.
            run.expected.update(drop_submissions(run.root, 3, run.rng, offset=len(run.expected)))
        attempt += 1
        if attempt % 2 and run.kill_at_state(run.rng.choice(TARGET_STATES)):
            continue
        run.kill_random()
    for _ in restarts_at:  # only with fewer kills than restarts
        run.restart_postgres()
    for node in run.nodes:
        if not node.alive:
            node.start()
    if not run.wait(settle_timeout, run.settled):
        run.result.notes.append("did not settle in time")
    # Deleting the sources follows `complete`; give the nodes a moment to finish that.
    run.wait(30, lambda: not left_in_drop(run))
    for node in run.nodes:
        node.stop()


def left_in_drop(run: Run) -> list[str]:
    final = run.view.states()
    return [
        m for m in run.expected if final.get(m) == "complete" and (run.root / "drop" / m).exists()
    ]


def judge(run: Run) -> None:
    result = run.result
    final = run.view.states()
    check_sessions(run.root, run.expected, result)
    check_outcomes(run.root, run.expected, final, result)
    result.submissions = len(run.expected)
    result.failed = sum(final.get(m) == "failed" for m in run.expected)
    result.takeovers = run.view.takeovers()
    result.delivered_by = run.view.delivered_by()
    for manifest, sid, state, node in run.view.strays():
        result.strays += 1
        result.notes.append(f"{manifest}: a second row {sid} ({state}, seen by {node})")
    for manifest in left_in_drop(run):
        result.not_cleaned += 1
        result.notes.append(f"{manifest}: complete, but still in the drop folder")


def fleet_torture(
    root: Path,
    *,
    nodes: int,
    submissions: int,
    kills: int,
    pg_restarts: int,
    seed: int,
    lease: float = 5.0,
    rate: float = 8e6,
    settle_timeout: float = 300,
    keep: bool = False,
) -> FleetResult:
    """One run in `root` with its own PostgreSQL (removed afterwards, by pid)."""
    rng = random.Random(seed)
    result = FleetResult(nodes)
    with pg_cluster() as pg:
        view = FleetView("", pg.password)
        fleet = setup(root, pg, nodes, lease, rate)
        view.url = str(yaml.safe_load(fleet[0].config.read_text())["journal"]["url"])
        run = Run(root, fleet, view, pg, rng, result, drop_submissions(root, submissions, rng))
        try:
            torture(run, kills, pg_restarts, settle_timeout)
            judge(run)
            if result.broken or keep:
                view.dump(root)
        finally:
            for node in fleet:
                node.kill()
            view.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3, choices=range(1, len(NODE_NAMES) + 1))
    parser.add_argument("--submissions", type=int, default=24)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--pg-restarts", type=int, default=2)
    parser.add_argument("--lease-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the run's folder anyway")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hotfolder-fleet-torture-"))
    started = time.monotonic()
    try:
        result = fleet_torture(
            root,
            nodes=args.nodes,
            submissions=args.submissions,
            kills=args.kills,
            pg_restarts=args.pg_restarts,
            seed=args.seed,
            lease=args.lease_seconds,
            keep=args.keep,
        )
    except BaseException:
        print(f"the run broke off; its folder is kept in {root}", file=sys.stderr)
        raise
    wall = time.monotonic() - started
    print(result.line())
    print(
        "kills, pg_restarts, lost, duplicated, out_of_order, held, held_needless, takeovers = "
        f"{result.kills}, {result.pg_restarts}, {result.lost}, {result.duplicated}, "
        f"{result.out_of_order}, {result.held}, {result.held_needless}, {result.takeovers}"
    )
    for note in result.notes[:30]:
        print("  note:", note)
    print(f"wall: {wall:.0f} s, cores: {os.cpu_count()}, seed: {args.seed}")
    setup_figures = {
        "seed": args.seed,
        "nodes": args.nodes,
        "submissions_at_start": args.submissions,
        "kills_asked": args.kills,
        "pg_restarts_asked": args.pg_restarts,
        "lease_seconds": args.lease_seconds,
        "wall_seconds": round(wall),
        "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"setup": setup_figures, **result.__dict__}, indent=2, default=str) + "\n"
    )
    if result.broken or args.keep:
        print(f"evidence kept in {root}")
        sys.exit(1 if result.broken else 0)
    with contextlib.suppress(OSError):
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
