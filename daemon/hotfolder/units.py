"""Human units in the config: `5s`, `24h`, `100GB`, `1GiB`, `100Mbps`. The one place that
reads them; plain numbers keep meaning what they always did (seconds, bytes, ascp's Kbps).

Each parser returns the value or raises UnitError, whose message says in plain words what
was wrong and how to write it; config.py puts it in the `file:line: at 'key': message` form.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from enum import StrEnum


class Unit(StrEnum):
    """What a config key measures; the schema marks unit keys with `"unit": Unit.X`."""

    DURATION = "duration"
    BYTES = "bytes"
    RATE = "rate"


class UnitError(ValueError):
    """A value that is not a valid amount of its unit; str() is the plain-language reason."""


_NUMBER = r"[0-9]+(?:\.[0-9]+)?"

# -- durations: seconds -----------------------------------------------------------------------

_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
_DURATION_PART = rf"({_NUMBER})\s*(ms|sec|s|min|m|hr|h|d)"
#: For the schema: a string duration such as 5s, 90s, 24h, 1h30m.
DURATION_PATTERN = rf"^\s*(?:{_NUMBER}\s*(?:ms|sec|s|min|m|hr|h|d)\s*)+$"


def seconds(value: float | str) -> float:
    """`5`, `5s`, `2m`, `24h`, `1d`, `1h30m` -> seconds."""
    if not isinstance(value, str):
        return float(value)
    text = value.strip()
    if re.fullmatch(_NUMBER, text):
        return float(text)
    if not re.fullmatch(DURATION_PATTERN, text):
        raise UnitError(
            f"{value!r} is not a duration: write seconds as a number, or a number with "
            "s, m, h or d (5s, 90s, 30m, 24h, 1h30m)"
        )
    return sum(float(n) * _SECONDS[u] for n, u in re.findall(_DURATION_PART, text))


def format_seconds(value: float) -> str:
    """The shortest exact form: 86400 -> '1d', 5400 -> '1h30m', 2.5 -> '2.5s'."""
    if value != int(value):
        return f"{value:g}s"
    left, parts = int(value), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


# -- sizes: bytes -----------------------------------------------------------------------------

_BYTES = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
#: For the schema: 100GB (powers of 1000) or 1GiB (powers of 1024); the B is a capital.
BYTES_PATTERN = rf"^\s*{_NUMBER}\s*(?:[KkMmGgTt](?:i|I)?)?B\s*$"


def size(value: int | str) -> int:
    """`1000`, `100GB`, `1GiB`, `10 MB` -> bytes (an integer)."""
    if not isinstance(value, str):
        return int(value)
    text = value.strip()
    if re.fullmatch("[0-9]+", text):
        return int(text)
    found = re.fullmatch(rf"({_NUMBER})\s*([A-Za-z]+)", text)
    if found is None:
        raise UnitError(f"{value!r} is not a size: write bytes as a number, or 100GB or 1GiB")
    number, unit = found.groups()
    if unit.endswith("b"):
        raise UnitError(
            f"{value!r} is in bits (a small b): sizes are in bytes, write {number}{unit[:-1]}B"
        )
    if unit.upper() not in _BYTES:
        raise UnitError(
            f"{value!r}: unknown unit {unit!r}; write B, KB, MB, GB, TB (powers of 1000) "
            "or KiB, MiB, GiB, TiB (powers of 1024)"
        )
    exact = Decimal(number) * _BYTES[unit.upper()]
    if exact != exact.to_integral_value():
        raise UnitError(f"{value!r} is not a whole number of bytes")
    return int(exact)


def format_size(value: int) -> str:
    """The largest unit that says it exactly: 100000000000 -> '100GB', 1073741824 -> '1GiB'."""
    for unit in ("TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "KB"):
        factor = _BYTES[unit.upper()]
        if value and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


# -- transfer rates: what ascp -l and -m take ------------------------------------------------

#: bits per second in one unit; ascp's own suffixes K/M/G mean the same (Kbps, Mbps, Gbps)
_BITS = {"bps": 1, "kbps": 10**3, "mbps": 10**6, "gbps": 10**9}
_ASCP_SUFFIX = {"kbps": "K", "mbps": "M", "gbps": "G"}
#: For the schema: ascp's own form (510000 = Kbps, 100M, 80%) or 100Mbps, 1.5Gbps, 500kbps.
RATE_PATTERN = rf"^\s*{_NUMBER}\s*(?:[GgMmKkPp%]|[KkMmGg]?bps|[KkMmGg]bit/s)?\s*$"


def ascp_rate(value: int | float | str) -> str:
    """A rate as ascp -l/-m take it: a plain number is ascp's Kbps, and stays as written;
    `100Mbps` -> '100M', `1.5Gbps` -> '1.5G', `500kbps` -> '500K', `800000bps` -> '800'."""
    text = str(value).strip()
    found = re.fullmatch(rf"({_NUMBER})\s*(.*)", text)
    if found is None or isinstance(value, bool):
        raise UnitError(f"{value!r} is not a rate: write 100Mbps, 1.5Gbps, 500kbps or 80%")
    number, unit = found.group(1), found.group(2).replace("bit/s", "bps")
    if unit in ("", "%", *"GgMmKkPp"):
        return f"{number}{unit}"  # ascp's own syntax, unchanged
    if re.fullmatch(r"[KkMmGgTt]?i?B(/s|ps)", unit):
        prefix = unit[0].upper() if unit[0] != "B" else ""
        raise UnitError(
            f"{value!r} is in bytes per second: ascp rates are bits per second, "
            f"write {_plain(Decimal(number) * 8)}{prefix.lower() if prefix == 'K' else prefix}bps"
        )
    key = unit.lower()
    if key not in _BITS:
        raise UnitError(
            f"{value!r}: unknown rate unit {unit!r}; write bps, kbps, Mbps or Gbps "
            "(bits per second), or % of the link"
        )
    if key == "bps":
        return _plain(Decimal(number) / 1000)
    return f"{_plain(Decimal(number))}{_ASCP_SUFFIX[key]}"


def bits_per_second(ascp: str) -> float:
    """What an ascp rate (as `ascp_rate` returns it) means in bits per second; NaN for %."""
    if ascp.endswith(("%", "P", "p")):
        return math.nan
    factor = {"K": 10**3, "M": 10**6, "G": 10**9}.get(ascp[-1:].upper())
    return float(ascp[:-1]) * factor if factor else float(ascp) * 1000


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def parse(unit: Unit, value: int | float | str) -> int | float | str:
    """The value of a config key measured in `unit`, as the code uses it."""
    if unit is Unit.DURATION:
        return seconds(value)
    if unit is Unit.BYTES:
        if isinstance(value, float) and value != int(value):
            raise UnitError(f"{value!r} is not a whole number of bytes")
        return size(int(value) if isinstance(value, float) else value)
    return ascp_rate(value)
