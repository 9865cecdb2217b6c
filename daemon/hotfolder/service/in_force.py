"""The config in force and the targets built from it, as one value: a reload replaces it
whole, so no room ever sees a new config beside old targets. Rooms ask for it at each use;
a transfer in flight keeps the target it started with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

import structlog

from hotfolder.clock import Clock, SystemClock
from hotfolder.config import settings as config_module
from hotfolder.config.sections import AscpTargetSettings, TargetSettings, VerifySettings
from hotfolder.config.settings import Config, WatchConfig
from hotfolder.transfer.delivery import RetryPolicy
from hotfolder.transfer.link import Link, LinkSettings
from hotfolder.transfer.schedule import local_zone
from hotfolder.transfer.targets import SharedEvidence, Target
from hotfolder.transfer.targets import build as build_target

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class InForce:
    config: Config
    targets: Mapping[str, Target]  # by target name
    links: Mapping[str, Link] = field(default_factory=dict)  # ascp targets' (issue 14)
    shared: SharedEvidence | None = None  # a fleet's evidence store (issue 13)

    @classmethod
    def build(
        cls,
        config: Config,
        clock: Clock | None = None,
        zone: tzinfo | None = None,
        links: Mapping[str, Link] | None = None,
        shared: SharedEvidence | None = None,
    ) -> InForce:
        """The targets of `config`, each ascp one following a Link that reads the daemon's
        `clock` and the workstation's `zone`. A reload passes the old `links`: a target
        that stays keeps its Link, so an operator's rate and the sessions attached to it
        survive; the Link takes the new keys. `shared`: a fleet's evidence store, kept by
        a reload too."""
        clock = clock or SystemClock()
        zone = zone or local_zone()
        kept = dict(links or {})
        new_links: dict[str, Link] = {}
        for name, t in config.targets.items():
            if isinstance(t.settings, AscpTargetSettings):
                settings = LinkSettings.of(t.settings, zone)
                link = kept.get(name)
                if link is None:
                    link = Link(name, settings, clock)
                else:
                    link.reconfigure(settings)
                new_links[name] = link
        built = {
            n: build_target(t, config.state_dir, new_links.get(n), shared)
            for n, t in config.targets.items()
        }
        return cls(config, built, new_links, shared)

    def link_of(self, watch: WatchConfig) -> Link | None:
        return self.links.get(watch.target)

    def watch(self, name: str) -> WatchConfig | None:
        return next((w for w in self.config.watches if w.name == name), None)

    def target_of(self, watch: WatchConfig) -> Target:
        return self.targets[watch.target]

    def targets_by_watch(self) -> dict[str, Target]:
        return {w.name: self.targets[w.target] for w in self.config.watches}

    def settings(self, watch: WatchConfig) -> TargetSettings:
        return self.config.targets[watch.target].settings

    def quota(self, watch: WatchConfig) -> int:
        return self.settings(watch).quota_bytes

    def retry(self, watch: WatchConfig, default: RetryPolicy) -> RetryPolicy:
        settings = self.settings(watch)
        own = settings.retry if isinstance(settings, AscpTargetSettings) else None
        return own or default

    def verify(self, watch: WatchConfig) -> VerifySettings | None:
        return self.settings(watch).verify

    def sharing_target(self, watch: WatchConfig) -> frozenset[str]:
        """The watches that send to the same target (one account, one quota)."""
        return frozenset(w.name for w in self.config.watches if w.target == watch.target)


Current = Callable[[], InForce]


def reread(source: Path) -> Config | None:
    """The config file again, or None (said) if it is invalid: the running one stays."""
    try:
        return config_module.load(source)
    except config_module.InvalidConfig as err:
        log.error(  # noqa: TRY400 - the errors say it all; a traceback would not help
            "reload refused: the new config is invalid; keeping the running one",
            errors=[str(e) for e in err.errors],
        )
        return None
