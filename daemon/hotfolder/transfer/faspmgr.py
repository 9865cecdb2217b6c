"""The FASPMGR 2 management-port protocol (ingest-facts §1.8, §1.9): frames and error codes.

Pure code, no sockets: `FrameParser.feed(bytes)` returns the frames completed so far;
`encode` writes one (for commands such as CANCEL, and for the test simulator).
Framing: a `FASPMGR 2` header line, `Key: Value` lines split on the first ': ', a blank line
to end the frame. A new header discards an unfinished frame. Values escape newline, CR and
ESC as ESC n, ESC r, ESC ESC.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

HEADER = "FASPMGR 2"
ESC = "\x1b"
_UNESCAPE = {"n": "\n", "r": "\r", ESC: ESC}

#: FASP error codes a later try can get past (aspera-cli's as_mgmt_err_is_retryable, newer
#: spec: 0-69 with this set).
RETRYABLE_CODES = frozenset(
    {12, 13, 14, 15, 16, 17, 18, 23, 32, 33, 35, 36, 37, 39, 40, 44, 45, 47, 61, 69}
)
CODE_NAMES = {
    1: "FASP protocol error",
    2: "ascp error",
    3: "ambiguous target",
    4: "no such file",
    5: "no permission",
    6: "not a directory",
    7: "is a directory",
    8: "usage error",
    9: "duplicate licence",
    10: "licence rate exceeded",
    11: "internal error",
    12: "control/SSH connection error",
    13: "SSH timeout",
    14: "UDP connection error",
    15: "UDP connection timeout",
    16: "connection lost",
    17: "receiver send error",
    18: "receiver receive error",
    19: "authentication failed",
    20: "nothing to transfer",
    21: "not a regular file",
    22: "file table overflow",
    23: "too many open files",
    24: "file too big",
    25: "no space left",
    26: "read-only file system",
    27: "some files failed",
    28: "cancelled",
    29: "no licence",
    30: "licence expired",
    31: "socket setup failed",
    32: "out of memory",
    33: "cannot spawn thread",
    34: "unauthorized",
    35: "disk read error",
    36: "disk write error",
    37: "authorization error",
    38: "illegal licence",
    39: "peer aborted session",
    40: "data transfer stalled",
    41: "path outside docroot",
    42: "already exists",
    43: "cannot stat",
    44: "cannot open connection",
    45: "bandwidth measurement failed",
    46: "virtual link error",
    47: "HTTP connection error",
    48: "file encryption error",
    49: "file decryption passphrase error",
    50: "bad server configuration",
    51: "server host key does not match",
    55: "path too long",
    56: "illegal characters in path",
    59: "remote storage error",
    64: "cannot rename partial file",
}
#: Errors an editor or operator must fix; say so instead of "try again".
AUTH_CODES = frozenset({19, 34, 51})
LICENCE_CODES = frozenset({9, 10, 29, 30, 38})
#: Errors only the admin can fix (credentials, licence, our own argv, the server's docroot,
#: permissions, disk and configuration); the editor's drop is fine and waits for the fix.
ADMIN_CODES = AUTH_CODES | LICENCE_CODES | frozenset({5, 8, 25, 26, 41, 50, 59})
#: Errors that end a session before any file data can move: the login, the licence, the
#: command line, the first TCP connection. With no data-phase frame before them they prove
#: that nothing of the session arrived.
PRE_TRANSFER_CODES = AUTH_CODES | LICENCE_CODES | frozenset({8, 44})
#: FILEERROR codes for a source ascp could not open at all (no such file, cannot stat).
SOURCE_NOT_FOUND = frozenset({4, 43})
#: Frames that mean the data phase began (files counted, bytes moving, a file done or failed).
DATA_PHASE = frozenset({"NOTIFICATION", "STATS", "STOP", "FILEERROR", "ARGSTOP"})


def is_retryable(code: int, description: str = "") -> bool:
    # Code 14 is a network blip, except when the address itself is unusable (aspera-cli).
    if code == 14 and "target address not available" in description.lower():
        return False
    return code in RETRYABLE_CODES


@dataclass(frozen=True, slots=True)
class Frame:
    fields: dict[str, str]

    @property
    def type(self) -> str:
        return self.fields.get("Type", "")

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)

    def int(self, key: str, default: int = 0) -> int:
        try:
            return int(self.fields.get(key, default))
        except ValueError:
            return default


class FrameParser:
    """Incremental: feed it whatever recv() returned, get back the frames completed."""

    MAX_LINE = 1 << 20  # a runaway line is cut off rather than buffered for ever

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._fields: dict[str, str] | None = None

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += self._decoder.decode(data)
        frames: list[Frame] = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            frame = self._line(line.removesuffix("\r"))
            if frame is not None:
                frames.append(frame)
        if len(self._buffer) > self.MAX_LINE:
            self._buffer = ""
        return frames

    def _line(self, line: str) -> Frame | None:
        if line == HEADER:
            self._fields = {}  # a new header discards an unfinished frame
            return None
        if self._fields is None:
            return None  # noise before the first header
        if line == "":
            frame, self._fields = Frame(self._fields), None
            return frame if frame.type else None
        key, sep, value = line.partition(":")
        if sep and key:
            self._fields[key] = _unescape(value[1:] if value.startswith(" ") else value)
        return None


def _unescape(value: str) -> str:
    if ESC not in value:
        return value
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == ESC and i + 1 < len(value):
            out.append(_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace(ESC, ESC + ESC).replace("\n", ESC + "n").replace("\r", ESC + "r")


def encode(fields: dict[str, object]) -> bytes:
    lines = [HEADER, *(f"{k}: {_escape(str(v))}" for k, v in fields.items()), "", ""]
    return "\n".join(lines).encode()


def rate_command(kbps: int) -> bytes:
    """RATE: a running session's new target rate, in Kbps as ascp -l's plain number
    (ingest-facts §1.8: `Type: RATE`, `Rate: 300000`); ascp applies it without stopping."""
    if kbps <= 0:
        raise ValueError(f"a rate must be positive, not {kbps} Kbps")
    return encode({"Type": "RATE", "Rate": kbps})
