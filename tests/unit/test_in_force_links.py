"""InForce builds one Link per ascp target (issue 14) and a reload keeps it: an operator's
rate and the sessions following it survive `systemctl reload`, and the Link takes the new
keys; a local target has none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from hotfolder.clock import FakeClock
from hotfolder.config import settings as config
from hotfolder.service.in_force import InForce
from hotfolder.transfer.targets.ascp import AscpTarget
from tests.helpers import ascp_config

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_reload_keeps_each_targets_link_with_the_new_keys(tmp_path: Path) -> None:
    path = ascp_config(tmp_path, schedule=[{"from": "20:00", "to": "07:00"}], max_sessions=1)
    clock = FakeClock(wall=MONDAY_NOON)
    first = InForce.build(config.load(path), clock, UTC)
    link = first.links["aspera"]
    target = first.targets["aspera"]
    assert isinstance(target, AscpTarget)
    assert target.link is link, "the target's sessions follow the link the dispatcher reads"
    assert not link.may_start()
    link.set_rate("300Mbps", "alice (uid 1000, pid 1)")

    data = yaml.safe_load(path.read_text())
    data["targets"]["aspera"]["schedule"] = [{"from": "11:00", "to": "13:00"}]
    data["targets"]["aspera"]["max_sessions"] = 3
    data["targets"]["nas"] = {"type": "local", "path": str(tmp_path / "ingest")}
    path.write_text(yaml.safe_dump(data))
    second = InForce.build(config.load(path), clock, UTC, links=first.links)

    assert second.links["aspera"] is link
    assert link.may_start(), "the new schedule applies"
    assert link.settings.max_sessions == 3
    now = link.now()
    assert (now.rate, now.override.who if now.override else None) == (
        "300M",
        "alice (uid 1000, pid 1)",
    )
    assert "nas" not in second.links
