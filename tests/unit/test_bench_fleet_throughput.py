"""bench.fleet_throughput's reading of the records: a wrong mapping would print plausible but
wrong figures, so the pure parts are pinned here (the bench itself is run by hand)."""

import json
from pathlib import Path

from bench.fleet_throughput import (
    Delivery,
    around_sessions,
    first_session_start,
    handed_over,
    node_use,
)


def test_a_submissions_first_session_is_its_earliest_start_under_any_of_its_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "sim").mkdir()
    starts = [
        {"at": 8.0, "files": ["sub001.xml"]},  # the manifest's own session, later
        {"at": 5.0, "files": ["sub001.mp4", "sub001.jpg"]},
        {"at": 3.0, "files": ["sub002.mp4", "sub002.jpg"]},
        {"at": 9.0, "files": ["sub002.mp4", "sub002.jpg"]},  # a retried media session
    ]
    lines = "".join(json.dumps(s) + "\n" for s in starts)
    (tmp_path / "sim" / "starts.jsonl").write_text(lines)
    assert first_session_start(tmp_path) == {"sub001.xml": 5.0, "sub002.xml": 3.0}


def delivery(name: str, ready_by: str, node: str, queued: float, complete: float) -> Delivery:
    at = {"ready": 0.0, "queued": queued, "complete": complete}
    by = {"ready": ready_by, "queued": node, "complete": node}
    return Delivery(f"id-{name}", name, "complete", node, at, by)


def test_each_node_is_charged_its_own_deliveries_and_the_gaps_between_them() -> None:
    done = [
        delivery("s1.xml", "a", "a", 0.0, 2.0),
        delivery("s2.xml", "a", "b", 1.0, 3.0),
        delivery("s3.xml", "b", "a", 2.5, 4.5),  # a waited 0.5 s after s1
        delivery("s4.xml", "b", "b", 3.1, 5.0),
    ]
    use = node_use(done, (0.0, 5.0))
    assert {n: u["delivered"] for n, u in use.items()} == {"a": 2, "b": 2}
    assert use["a"]["busy_share"] == 4.0 / 5.0
    assert round(use["a"]["gap_p50_s"], 6) == 0.5
    assert round(use["b"]["gap_p50_s"], 6) == 0.1
    assert use["b"]["first_queued_s"] == 1.0
    assert handed_over(done, "queued") == 2  # s2 and s3 went to the node that did not see them


def test_the_daemons_time_around_a_session_is_read_from_its_own_steps() -> None:
    at = {"sending-media": 10.0, "media-sent": 12.0, "sending-manifest": 12.1, "complete": 13.5}
    done = [Delivery("m-1", "m.xml", "complete", "a", at, {})]

    def record(session: str, started: float, ended: float) -> dict[str, object]:
        tags = {"hotfolder": {"submission": "m-1", "session": session}}
        return {"tags": json.dumps(tags), "started": started, "ended": ended}

    records = [record("manifest", 12.2, 13.2), record("media", 10.1, 11.9)]
    records.append({"tags": None, "started": 0.0, "ended": 1.0})  # not the daemon's: left out
    found = around_sessions(records, done)
    assert [round(x, 6) for x in found["step_to_sim_start"]] == [0.1, 0.1]
    assert [round(x, 6) for x in found["sim_end_to_step"]] == [0.3, 0.1]
