"""The config in force and the targets built from it, as one value: a reload replaces it
whole, so no room ever sees a new config beside old targets. Rooms ask for it at each use;
a transfer in flight keeps the target it started with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hotfolder.config.schema import COMMON_TARGET_PROPERTIES
from hotfolder.config.settings import Config, WatchConfig
from hotfolder.transfer.delivery import RetryPolicy
from hotfolder.transfer.targets import Target
from hotfolder.transfer.targets import build as build_target

DEFAULT_QUOTA: int = COMMON_TARGET_PROPERTIES["quota_bytes"]["default"]


@dataclass(frozen=True, slots=True)
class InForce:
    config: Config
    targets: Mapping[str, Target]  # by target name

    @classmethod
    def build(cls, config: Config) -> InForce:
        built = {n: build_target(t, config.state_dir) for n, t in config.targets.items()}
        return cls(config, built)

    def watch(self, name: str) -> WatchConfig | None:
        return next((w for w in self.config.watches if w.name == name), None)

    def target_of(self, watch: WatchConfig) -> Target:
        return self.targets[watch.target]

    def targets_by_watch(self) -> dict[str, Target]:
        return {w.name: self.targets[w.target] for w in self.config.watches}

    def options(self, watch: WatchConfig) -> dict[str, Any]:
        return self.config.targets[watch.target].options

    def quota(self, watch: WatchConfig) -> int:
        return int(self.options(watch).get("quota_bytes", DEFAULT_QUOTA))

    def retry(self, watch: WatchConfig, default: RetryPolicy) -> RetryPolicy:
        raw = self.options(watch).get("retry")
        return RetryPolicy(**raw) if raw else default

    def sharing_target(self, watch: WatchConfig) -> frozenset[str]:
        """The watches that send to the same target (one account, one quota)."""
        return frozenset(w.name for w in self.config.watches if w.target == watch.target)


Current = Callable[[], InForce]
