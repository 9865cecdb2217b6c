"""Who may act (retry, hold) in the window: a users file of `name:argon2-hash` lines, and a
throttle that slows repeated wrong logins.

Argon2id (argon2-cffi, the reference implementation's bindings): a memory-hard hash, so a
stolen users file costs an attacker memory as well as time per guess; hashlib.scrypt would do
too, but argon2-cffi also encodes its parameters in the hash and says when one should be
re-hashed, which is all the key management this file gets. The file is read at every login
(a changed password takes effect at once) from a path or a systemd credential.

Make a line with `python -m hotfolder.window.users NAME` (the password is read from the
terminal or stdin, never from the command line).
"""

from __future__ import annotations

import getpass
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hotfolder.credentials import read_secret

_HASHER = PasswordHasher()
#: Checked when the name is unknown, so a wrong name costs what a wrong password costs.
_DUMMY = _HASHER.hash("not a password of anyone's")

#: Wrong logins allowed before each further try has to wait.
FREE_TRIES = 3
#: The wait doubles with each wrong login past FREE_TRIES, up to this many seconds.
MAX_WAIT = 60.0


class Verdict(StrEnum):
    OK = "ok"
    REFUSED = "refused"  # wrong name or wrong password: never said which
    SLOWED = "slowed"  # too many wrong logins: try again later


@dataclass(frozen=True, slots=True)
class UsersSource:
    file: Path | None = None
    credential: str | None = None


def read_users(source: UsersSource) -> dict[str, str]:
    """name -> hash; blank lines and # comments skipped."""
    text = read_secret(source.file, source.credential) or ""
    users = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, hashed = line.split(":", 1)
        users[name.strip()] = hashed.strip()
    return users


def hash_line(name: str, password: str) -> str:
    if ":" in name or not name.strip():
        raise ValueError("a user name may not be empty or contain ':'")
    return f"{name}:{_HASHER.hash(password)}"


class Throttle:
    """Wrong logins counted per client address and per user name: past FREE_TRIES, the next
    try is refused until a wait (doubling each time) has passed. Refusing, not sleeping: a
    sleeping request would hold one of the server's few threads, so an attacker could slow
    the page for everyone."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, last failure)

    def wait_left(self, *keys: str) -> float:
        with self._lock:
            now = self._now()
            return max((self._wait(key, now) for key in keys), default=0.0)

    def _wait(self, key: str, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if count < FREE_TRIES:
            return 0.0
        wait = min(2.0 ** (count - FREE_TRIES), MAX_WAIT)
        return max(0.0, last + wait - now)

    def failed(self, *keys: str) -> None:
        with self._lock:
            now = self._now()
            for key in keys:
                count, _ = self._failures.get(key, (0, 0.0))
                self._failures[key] = (count + 1, now)
            if len(self._failures) > 100_000:  # many addresses: forget the oldest half
                ordered = sorted(self._failures.items(), key=lambda kv: kv[1][1])
                self._failures = dict(ordered[len(ordered) // 2 :])

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


class Login:
    def __init__(self, source: UsersSource, throttle: Throttle) -> None:
        self.source = source
        self.throttle = throttle

    def check(self, name: str, password: str, client: str) -> tuple[Verdict, float]:
        """The verdict, and for SLOWED how many seconds are left to wait."""
        keys = (f"addr:{client}", f"user:{name}")
        wait = self.throttle.wait_left(*keys)
        if wait > 0:
            return Verdict.SLOWED, wait
        hashed = read_users(self.source).get(name)
        try:
            _HASHER.verify(hashed or _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            self.throttle.failed(*keys)
            return Verdict.REFUSED, 0.0
        if hashed is None:
            self.throttle.failed(*keys)
            return Verdict.REFUSED, 0.0
        self.throttle.succeeded(*keys)
        return Verdict.OK, 0.0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hotfolder.window.users NAME  (password from stdin)")
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    print(hash_line(argv[0], password))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
