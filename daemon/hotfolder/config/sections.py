"""Typed settings for the config's sections: one frozen dataclass per target type, for
notifications, verify, retry and Backlot accounts. Every default is read from the schema
(`schema.default`), never typed again here, so the example config, `check-config` and the
daemon cannot disagree about what an unset key means.

The builders take a block the schema has already accepted (and the units step has already
turned into numbers), so they convert (paths resolved against the config's folder, lists to
tuples) but do not validate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hotfolder.config import schema
from hotfolder.config.schema import default

Resolve = Callable[[str], Path]  # a path as written in the config -> where it really is


@dataclass(frozen=True, slots=True)
class Secret:
    """Where a secret is read from, at the moment it is needed (a rotated one needs no
    restart): a file, or a systemd credential by name. Never the secret itself."""

    file: Path | None = None
    credential: str | None = None

    @property
    def given(self) -> bool:
        return self.file is not None or self.credential is not None


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Exponential backoff for errors a later try can get past (`retry:`)."""

    tries: int = default(schema.RETRY, "tries")
    initial_delay: float = default(schema.RETRY, "initial_delay")
    factor: float = default(schema.RETRY, "factor")
    max_delay: float = default(schema.RETRY, "max_delay")

    def delays(self) -> Iterator[float]:
        """The pause before each retry (so tries - 1 values)."""
        delay = float(self.initial_delay)
        for _ in range(self.tries - 1):
            yield min(delay, self.max_delay)
            delay *= self.factor


@dataclass(frozen=True, slots=True)
class VerifySettings:
    """A target's `verify:`: look the delivered assets up in Backlot."""

    backlot: str  # a name under `backlot:`
    timeout: float = default(schema.VERIFY, "timeout")
    poll_interval: float = default(schema.VERIFY, "poll_interval")


@dataclass(frozen=True, slots=True)
class BacklotAccount:
    api_key: str
    secret: Secret  # api_secret_file or api_secret_credential (the schema wants one)
    api_host: str = default(schema.BACKLOT_ACCOUNT, "api_host")
    read_host: str = default(schema.BACKLOT_ACCOUNT, "read_host")


@dataclass(frozen=True, slots=True)
class LocalTargetSettings:
    """`type: local`: a destination folder."""

    path: Path
    quota_bytes: int = default(schema.COMMON_TARGET_PROPERTIES, "quota_bytes")
    verify: VerifySettings | None = None


_ASCP = schema.ASCP_TARGET


@dataclass(frozen=True, slots=True)
class AscpTargetSettings:
    """`type: ascp`: IBM Aspera's client. `retry` is None when the config sets none (the
    daemon then uses its own policy)."""

    host: str
    user: str
    ssh_port: int = default(_ASCP, "ssh_port")
    udp_port: int = default(_ASCP, "udp_port")
    destination: str = default(_ASCP, "destination")
    password_file: Path | None = None
    password_credential: str | None = None
    key_file: Path | None = None
    sshfp: str | None = None
    target_rate: str | None = None  # ascp -l's form, from the units step
    min_rate: str | None = None
    policy: str = default(_ASCP, "policy")
    cipher: str | None = None
    resume: int = default(_ASCP, "resume")
    ascp_path: str = default(_ASCP, "ascp_path")
    stall_timeout: float = default(_ASCP, "stall_timeout")
    connect_timeout: float = default(_ASCP, "connect_timeout")
    quota_bytes: int = default(schema.COMMON_TARGET_PROPERTIES, "quota_bytes")
    verify: VerifySettings | None = None
    retry: RetrySettings | None = None
    # Sharing the link (issue 14); transfer.link.LinkSettings reads them with the local zone.
    schedule: tuple[Mapping[str, Any], ...] = ()  # schema-checked windows, rates in ascp form
    at_window_end: str = default(_ASCP, "at_window_end")
    max_sessions: int | None = None

    @property
    def password(self) -> Secret:
        return Secret(self.password_file, self.password_credential)


TargetSettings = LocalTargetSettings | AscpTargetSettings

_EMAIL = schema.NOTIFICATIONS["properties"]["email"]
_WEBHOOK = schema.NOTIFICATIONS["properties"]["webhook"]


@dataclass(frozen=True, slots=True)
class EmailSettings:
    sender: str  # the `from:` key (a Python keyword)
    to: tuple[str, ...]
    host: str = default(_EMAIL, "host")
    port: int = default(_EMAIL, "port")
    starttls: bool = default(_EMAIL, "starttls")
    username: str | None = None
    password: Secret = field(default_factory=Secret)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str
    timeout: float = default(_WEBHOOK, "timeout")


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """`notifications:`; neither e-mail nor a webhook: nothing is sent."""

    batch_seconds: float = default(schema.NOTIFICATIONS, "batch_seconds")
    digest_every: float = default(schema.NOTIFICATIONS, "digest_every")
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None


# -- builders: a schema-checked block in, a typed value out ----------------------------------


def retry(raw: Mapping[str, Any] | None) -> RetrySettings | None:
    return None if raw is None else RetrySettings(**raw)


def verify(raw: Mapping[str, Any] | None) -> VerifySettings | None:
    return None if raw is None else VerifySettings(**raw)


def backlot_account(raw: Mapping[str, Any], resolve: Resolve) -> BacklotAccount:
    given = {k: v for k, v in raw.items() if k in ("api_host", "read_host")}
    secret = _secret(raw, "api_secret_file", "api_secret_credential", resolve)
    return BacklotAccount(raw["api_key"], secret, **given)


def target(raw: Mapping[str, Any], resolve: Resolve) -> TargetSettings:
    """A target's block (with its `type`) as the typed settings of that type. Keys the type
    has no field for are another stage's (they stay in TargetConfig.options);
    tests/unit/test_config_sections.py says when a schema key has no field."""
    kind = LocalTargetSettings if raw["type"] == "local" else AscpTargetSettings
    names = {f.name for f in fields(kind)}
    given = {k: v for k, v in raw.items() if k in names}
    given["verify"] = verify(given.get("verify"))
    for key in ("path", "password_file", "key_file"):
        if key in given:
            given[key] = resolve(given[key])
    if kind is AscpTargetSettings:
        given["retry"] = retry(given.get("retry"))
        given["schedule"] = tuple(given.get("schedule") or ())
    return kind(**given)


def notifications(raw: Mapping[str, Any] | None, resolve: Resolve) -> NotificationSettings:
    raw = raw or {}
    email = raw.get("email")
    webhook = raw.get("webhook")
    return NotificationSettings(
        **{k: raw[k] for k in ("batch_seconds", "digest_every") if k in raw},
        email=_email(email, resolve) if email else None,
        webhook=WebhookSettings(**webhook) if webhook else None,
    )


def _email(raw: Mapping[str, Any], resolve: Resolve) -> EmailSettings:
    given = {k: raw[k] for k in ("host", "port", "starttls", "username") if k in raw}
    password = _secret(raw, "password_file", "password_credential", resolve)
    return EmailSettings(raw["from"], tuple(raw["to"]), password=password, **given)


def _secret(raw: Mapping[str, Any], file_key: str, credential_key: str, resolve: Resolve) -> Secret:
    file = raw.get(file_key)
    return Secret(resolve(file) if file else None, raw.get(credential_key))
