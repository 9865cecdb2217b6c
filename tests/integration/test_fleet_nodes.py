"""Several real `hotfolder run` processes on one drop folder and one PostgreSQL journal (issue
13): every submission delivered exactly once, manifest after its media, archived once; a node
that dies mid-media is taken over when its lease runs out, and one that dies inside its
manifest session is never sent a second time. A node whose daemon is paused (SIGSTOP) past its
lease, while its sessions go on, gives the submission up when it wakes: it never starts the
manifest session of what another node took over, or opens the gate of one it had started.

The nodes, their per-node ascp simulators and the journal reads are tests/fleet_nodes.py; the
session judgements (a manifest re-sent, a manifest before its media) are bench.torture_checks'."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.torture import Result
from bench.torture_checks import MANIFEST, check_sessions, drop_submissions

from tests.fleet_nodes import Fleet, Node, fleet
from tests.pg import PgServer

#: A lease short enough that a dead node's work is taken over within seconds.
LEASE_S = 3


@pytest.fixture
def rig(tmp_path: Path, pg_server: PgServer) -> Iterator[Fleet]:
    with fleet(tmp_path, pg_server) as made:
        yield made


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: FASP error 4, no such file: what ascp says of a staged manifest it looked for before the
#: daemon opened the gate (transfer/targets/ascp_gate).
NO_SUCH_FILE = 4


def gate_shut(node: Node) -> set[int]:
    """The node's manifest sessions that ended because ascp looked for the manifest before
    the gate opened: not one byte of it was read. The daemon knows (the gate was shut) and
    tries again, which is safe; with the simulator's short login it happens now and then."""
    return {
        s["session"]
        for s in node.ended()
        if s["result"] == "error" and s.get("code") == NO_SUCH_FILE and is_manifest(s["files"])
    }


def is_manifest(files: list[str]) -> bool:
    return len(files) == 1 and files[0].endswith(".xml")


def sessions_of(nodes: list[Node]) -> Counter[str]:
    """How many sessions, on all nodes together, started to send each file and could read
    it (every session but those that found the manifest's gate shut)."""
    sent: Counter[str] = Counter()
    for node in nodes:
        shut = gate_shut(node)
        sent.update(name for s in node.starts() if s["session"] not in shut for name in s["files"])
    return sent


def judged(rig: Fleet, expected: dict[str, dict[str, str]]) -> Result:
    """bench.torture's session judgement, node by node: whether a manifest was already
    complete at the (shared) server when a session started for it, or started before its media
    were complete there, does not depend on which node started it."""
    result = Result()
    for node in rig.nodes.values():
        check_sessions(node.sim, expected, result)
    return result


def drop_one(rig: Fleet, name: str, video_bytes: int) -> dict[str, dict[str, str]]:
    """One submission (video, thumbnail, then the manifest), as bench.torture drops them."""
    files = {f"{name}.mp4": random.randbytes(video_bytes), f"{name}.jpg": random.randbytes(2000)}
    for fname, data in files.items():
        (rig.drop / fname).write_bytes(data)
    manifest = MANIFEST.format(video=f"{name}.mp4", thumb=f"{name}.jpg", name=name)
    (rig.drop / f"{name}.xml").write_text(manifest)
    files[f"{name}.xml"] = manifest.encode()
    return {f"{name}.xml": {f: hashlib.sha256(d).hexdigest() for f, d in files.items()}}


def wait_until_a_is_mid_media(rig: Fleet) -> None:
    """Node a holds s1 in sending-media, and some of its video has reached the server."""
    partial = rig.server / "s1.mp4.partial"

    def mid_media() -> bool:
        row = rig.rows().get("s1.xml")
        started = partial.exists() and partial.stat().st_size > 0
        return row is not None and (row.owner, row.state) == ("a", "sending-media") and started

    rig.wait(mid_media, 30, "a to be sending the media")


def test_three_nodes_deliver_sixty_submissions_each_exactly_once(rig: Fleet) -> None:
    for name in ("a", "b", "c"):
        rig.add(name, login_s=0.1)
    for name in ("a", "b", "c"):
        rig.start(name)
    expected = drop_submissions(rig.root, 60, random.Random(13))
    sources = {f for files in expected.values() for f in files}

    def settled() -> bool:
        # final in the journal, and archived (after complete): nothing left to happen
        return rig.all_final(set(expected)) and not any(rig.drop.iterdir())

    rig.wait(settled, 90, "60 submissions final and archived")
    rig.stop_all()

    rows = rig.rows()
    assert {m: rows[m].state for m in expected} == dict.fromkeys(expected, "complete")
    delivered_by = Counter(rows[m].delivered_by for m in expected)
    assert set(delivered_by) <= {"a", "b", "c"}, delivered_by
    # Work is spread: with two workers a node holds at most two submissions at a time, so
    # one node can not have taken all sixty while the two others, as fast, stood idle.
    assert len(delivered_by) > 1, delivered_by

    judgement = judged(rig, expected)
    assert (judgement.duplicated, judgement.out_of_order) == (0, 0), judgement.notes
    # No faults, no kills: every file (media and manifest) in exactly one session that could
    # read it, on one node; a second media session would be a second node working on a
    # claimed submission. Every other session found its manifest's gate shut.
    sent = sessions_of(list(rig.nodes.values()))
    assert {f: sent[f] for f in sources if sent[f] != 1} == {}
    for node in rig.nodes.values():
        failed = {s["session"] for s in node.ended() if s["result"] != "done"}
        assert failed == gate_shut(node), node.ended()
    for files in expected.values():
        for fname, digest in files.items():
            assert sha(rig.server / fname) == digest, fname
    # archive_dir/<date>/<id>/: each source once, in its own submission's folder, with the
    # one receipt.json its archiving node wrote; nothing else anywhere.
    archived = sorted(
        p.relative_to(rig.archive).parts[1:] for p in rig.archive.rglob("*") if p.is_file()
    )
    assert archived == sorted(
        (rows[m].id, f) for m, files in expected.items() for f in [*files, "receipt.json"]
    )


def test_a_killed_node_s_submission_is_taken_over_and_sent_once(rig: Fleet) -> None:
    # a's link is slow (2 MB at 100 kB/s: 20 s of media), b's fast.
    a = rig.add("a", rate=100_000, lease_seconds=LEASE_S)
    b = rig.add("b", lease_seconds=LEASE_S)
    rig.start("a")
    expected = drop_one(rig, "s1", 2_000_000)
    wait_until_a_is_mid_media(rig)
    rig.start("b")  # b now sees a's live claim
    rig.kill("a")
    assert not (rig.server / "s1.mp4").exists(), "the media finished before a was killed"

    rig.wait(lambda: rig.all_final({"s1.xml"}), 45, "b to take over")
    rig.stop_all()
    row = rig.rows()["s1.xml"]
    assert (row.state, row.delivered_by) == ("complete", "b")
    sent = sessions_of([a, b])
    assert sent["s1.xml"] == 1  # the manifest once, by b
    assert [s["files"] for s in a.starts()] == [["s1.mp4", "s1.jpg"]]  # a got no further
    judgement = judged(rig, expected)
    assert (judgement.duplicated, judgement.out_of_order) == (0, 0), judgement.notes
    for fname, digest in expected["s1.xml"].items():
        assert sha(rig.server / fname) == digest, fname


def test_a_node_killed_in_its_manifest_session_is_never_sent_twice(rig: Fleet) -> None:
    # a's manifest sessions crawl (about 200 bytes at 20 bytes/s): a dies inside one.
    a = rig.add("a", manifest_rate=20, lease_seconds=LEASE_S)
    b = rig.add("b", lease_seconds=LEASE_S)
    rig.start("a")
    expected = drop_one(rig, "s1", 50_000)

    def in_manifest_session() -> bool:
        row = rig.rows().get("s1.xml")
        if row is None or (row.owner, row.state) != ("a", "sending-manifest"):
            return False
        attempted = ("attempt", "a") in rig.evidence(row.id)
        # the gate was open and ascp read the manifest: its bytes wait in the .partial
        return attempted and (rig.server / "s1.xml.partial").exists()

    rig.wait(in_manifest_session, 30, "a's manifest session")
    rig.start("b")
    rig.kill("a")
    assert not (rig.server / "s1.xml").exists(), "the manifest landed before a was killed"

    rig.wait(lambda: rig.all_final({"s1.xml"}), 45, "b to decide")
    rig.stop_all()
    row = rig.rows()["s1.xml"]
    # a died before its session renamed the manifest into place, so no receipt exists; b
    # cannot rule out that the manifest arrived (the attempt marker says ascp could read it):
    # it holds the submission for an operator and never sends it again.
    assert (row.state, row.error_code) == ("held", "manifest-unconfirmed"), row
    assert [kind for kind, _ in rig.evidence(row.id)] == ["attempt"]
    assert sessions_of([a, b])["s1.xml"] == 1, "the manifest was sent a second time"
    assert not any("s1.xml" in s["files"] for s in b.starts())
    judgement = judged(rig, expected)
    assert (judgement.duplicated, judgement.out_of_order) == (0, 0), judgement.notes


#: service.outcomes.log_ended's events: a submission completed (and archived), failed (and
#: quarantined) or held by the node that logs it.
ENDS = ("submission complete", "submission failed", "submission held")


#: What a node logs when it gives up a submission another node took over (service.worker):
#: its next fenced write was refused, or the heartbeat found the claim lost and stopped the
#: delivery under way.
GAVE_UP = ("submission changed hands", "transfer stopped: another node took the submission over")


def daemon_said(node: Node, event: str, sid: str) -> bool:
    return bool(node.events(event, sid))


def quarantined(rig: Fleet) -> list[Path]:
    return [p for p in (rig.root / "failed").rglob("*") if p.is_file()]


def archived_once(rig: Fleet, sid: str, expected: dict[str, dict[str, str]]) -> None:
    """archive_dir/<date>/<sid>/: each source once, with one receipt.json; nothing else."""
    archived = sorted(
        p.relative_to(rig.archive).parts[1:] for p in rig.archive.rglob("*") if p.is_file()
    )
    wanted = [(sid, f) for files in expected.values() for f in [*files, "receipt.json"]]
    assert archived == sorted(wanted)


#: When the paused node a is let go again: while b, having taken its submission over, is in
#: the media session a had left (the row in a state a's next steps may start from, so only the
#: claim stands in a's way), or once b has completed it (complete is final: a can move it
#: nowhere).
RESUMED_WHILE = ("b-sends-the-media", "b-completed")


@pytest.mark.parametrize("resumed_while", RESUMED_WHILE)
def test_a_node_paused_past_its_lease_never_starts_the_manifest_session_it_lost(
    rig: Fleet, resumed_while: str
) -> None:
    # a's link is slow (300 kB at 100 kB/s: 3 s of media), so it is caught mid-media; b's
    # media sessions wait at their start until released, so b is where the test wants it.
    a = rig.add("a", rate=100_000, lease_seconds=LEASE_S)
    b = rig.add("b", hold="media", lease_seconds=LEASE_S)
    rig.start("a")
    expected = drop_one(rig, "s1", 300_000)
    wait_until_a_is_mid_media(rig)
    # The daemon alone freezes, past its lease; its media session goes on and ends by itself,
    # so a, when it wakes, has its media done and the manifest session next.
    rig.pause("a")
    rig.start("b")
    sid = rig.rows()["s1.xml"].id

    def b_took_it_over() -> bool:
        row = rig.rows()["s1.xml"]
        media_ended = any(s["files"] == ["s1.mp4", "s1.jpg"] for s in a.ended())
        taken = any(line[1:] == ("taken over from a", "b") for line in rig.history(sid))
        return (
            taken and (row.owner, row.state) == ("b", "sending-media") and bool(b.held())
        ) and media_ended

    rig.wait(b_took_it_over, 30, "b to take s1 over and start its media session")
    assert [s["result"] for s in a.ended()] == ["done"]  # a's media session, to the end

    def b_completed() -> bool:
        return rig.all_final({"s1.xml"}) and not any(rig.drop.iterdir())  # and archived

    if resumed_while == "b-completed":
        b.release()
        rig.wait(b_completed, 30, "b to complete s1 and archive it")
    rig.resume("a")
    # a is done with s1 once it gave it up, or (the bug this test is for) ended it itself
    done = (*GAVE_UP, *ENDS)
    rig.wait(lambda: any(daemon_said(a, e, sid) for e in done), 30, "a to be done with s1")
    if resumed_while == "b-sends-the-media":
        b.release()
        rig.wait(b_completed, 30, "b to complete s1 and archive it")
    rig.stop_all()

    row = rig.rows()["s1.xml"]
    assert (row.state, row.delivered_by) == ("complete", "b"), row
    # a never started a manifest session: its one session is the media one it had begun.
    assert [s["files"] for s in a.starts()] == [["s1.mp4", "s1.jpg"]]
    assert sessions_of([b])["s1.xml"] == 1  # the manifest once, by b
    assert [kind for kind, node in rig.evidence(sid) if node == "a"] == []
    judgement = judged(rig, expected)
    assert (judgement.duplicated, judgement.out_of_order) == (0, 0), judgement.notes
    for fname, digest in expected["s1.xml"].items():
        assert sha(rig.server / fname) == digest, fname
    archived_once(rig, sid, expected)
    assert quarantined(rig) == []
    # a ended nothing of it (outcomes.log_ended: the one event of every end): it gave it up
    said = [e for e in done if daemon_said(a, e, sid)]
    assert said, "a never said it gave s1 up"
    assert set(said) <= set(GAVE_UP), said


def test_a_node_paused_before_its_manifest_gate_opened_never_opens_it(rig: Fleet) -> None:
    # a's manifest sessions wait, spawned, at their start (before ascp's INIT, so before the
    # daemon can open the gate) until released; then ascp's login takes 2 s, so a's daemon,
    # woken, reads the INIT while its ascp still runs and would open the gate if it could.
    a = rig.add("a", hold="manifest", manifest_login_s=2, lease_seconds=LEASE_S)
    b = rig.add("b", lease_seconds=LEASE_S)
    rig.start("a")
    expected = drop_one(rig, "s1", 50_000)

    def manifest_session_spawned() -> bool:
        row = rig.rows().get("s1.xml")
        if row is None or (row.owner, row.state) != ("a", "sending-manifest"):
            return False
        return bool(a.held()) and ("attempt", "a") not in rig.evidence(row.id)

    rig.wait(manifest_session_spawned, 30, "a's manifest session spawned, its gate shut")
    rig.pause("a")
    sid = rig.rows()["s1.xml"].id
    rig.start("b")

    def b_completed() -> bool:
        taken = any(line[1:] == ("taken over from a", "b") for line in rig.history(sid))
        # complete and archived: no attempt of a's in evidence, so nothing of it could
        # have left, and b sent it (no hold)
        return taken and rig.all_final({"s1.xml"}) and not any(rig.drop.iterdir())

    rig.wait(b_completed, 30, "b to take s1 over, send it and archive it")
    a.release()  # a's ascp starts (INIT) while its daemon still sleeps
    rig.wait(lambda: any(s["files"] == ["s1.xml"] for s in a.starts()), 10, "a's ascp to start")
    rig.resume("a")
    done = (*GAVE_UP, *ENDS)
    rig.wait(lambda: any(daemon_said(a, e, sid) for e in done), 30, "a to be done with s1")
    rig.wait(lambda: not rig.sessions_alive("a"), 30, "a's manifest session to end")
    rig.stop_all()

    row = rig.rows()["s1.xml"]
    assert (row.state, row.delivered_by) == ("complete", "b"), row
    assert [kind for kind, node in rig.evidence(sid) if node == "a"] == []
    # a's manifest session ran on with the gate shut: it either found no manifest to read
    # (FASP 4) or was stopped by a's daemon before it looked; never a session that ended well.
    mine = [s for s in a.ended() if s["files"] == ["s1.xml"]]
    assert [s for s in mine if (s["result"], s.get("code")) != ("error", NO_SUCH_FILE)] == []
    assert [x["name"] for x in a.landed()] == ["s1.mp4", "s1.jpg"]
    assert [x["name"] for x in b.landed()] == ["s1.xml"]  # the manifest once, by b
    judgement = Result()
    check_sessions(b.sim, expected, judgement)  # a's spawned manifest session is judged above
    assert (judgement.duplicated, judgement.out_of_order) == (0, 0), judgement.notes
    for fname, digest in expected["s1.xml"].items():
        assert sha(rig.server / fname) == digest, fname
    archived_once(rig, sid, expected)
    assert quarantined(rig) == []
    said = [e for e in done if daemon_said(a, e, sid)]
    assert said, "a never said it gave s1 up"
    assert set(said) <= set(GAVE_UP), said
