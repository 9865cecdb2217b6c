"""The command line's side of transfer windows (issue 14): `hotfolder rate` through the running
daemon's control socket, check-config's plain words about each schedule (overlaps, gaps), and
the waiting line `status` prints while ready work waits for a window. Status reads the config
and the local clock, not the daemon: the windows are a function of both."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from hotfolder.config.sections import AscpTargetSettings
from hotfolder.config.settings import Config
from hotfolder.model import State
from hotfolder.service import control_socket
from hotfolder.state.journal import Row
from hotfolder.transfer.schedule import Schedule, explain, local_zone, waiting_words


def schedules(cfg: Config, zone: tzinfo | None = None) -> dict[str, Schedule]:
    """Each ascp target's schedule that is not 'always', read in the local zone."""
    zone = zone or local_zone()
    found = {}
    for name, target in cfg.targets.items():
        settings = target.settings
        if isinstance(settings, AscpTargetSettings) and settings.schedule:
            found[name] = Schedule.from_config(settings.schedule, zone)
    return found


def explained(cfg: Config, zone: tzinfo | None = None) -> list[str]:
    """check-config's lines: each schedule in plain words, overlaps and gaps named."""
    lines = []
    for name, schedule in schedules(cfg, zone).items():
        lines.append(f"target {name}'s transfer windows:")
        lines += [f"  {line}" for line in explain(schedule)]
    return lines


def waiting(
    cfg: Config, rows: Iterable[Row], now: datetime, zone: tzinfo | None = None
) -> list[str]:
    """'target aspera: 3 ready, waiting for the 20:00 window (...)' for each target with
    ready submissions and no open window at `now`."""
    target_of = {w.name: w.target for w in cfg.watches}
    ready: dict[str, int] = {}
    for row in rows:
        if row.state is State.READY and row.watch in target_of:
            ready[target_of[row.watch]] = ready.get(target_of[row.watch], 0) + 1
    lines = []
    for name, schedule in schedules(cfg, zone).items():
        if ready.get(name) and schedule.at(now) is None:
            words = waiting_words(schedule, now)
            if words is not None:
                lines.append(f"target {name}: {ready[name]} ready, {words}")
    return lines


@dataclass(frozen=True, slots=True)
class RateAnswer:
    ok: bool
    message: str


def change_rate(
    cfg: Config, target: str, rate: str | None, for_: str | None, clear: bool
) -> RateAnswer:
    """Ask the running daemon to change `target`'s rate (or clear an operator's rate). The
    daemon, not this process, names who asked (the socket's peer credentials)."""
    payload: dict[str, object] = {"command": "rate", "target": target}
    if clear:
        payload["clear"] = True
    else:
        payload["rate"] = rate or ""
        if for_:
            payload["for"] = for_
    try:
        reply = control_socket.request(cfg.state_dir, payload)
    except OSError as err:
        path = control_socket.socket_path(cfg.state_dir)
        return RateAnswer(
            False,
            f"no daemon answers on {path} ({err.strerror or err}): is hotfolder running, "
            "and are you its user or root?",
        )
    return RateAnswer(reply.ok, reply.message)
