"""Human units: plain numbers keep their meaning; every written form reads back exactly."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotfolder import units


@given(st.integers(min_value=0, max_value=10**7))
def test_a_duration_reads_back_from_its_shortest_form(n: int) -> None:
    assert units.seconds(units.format_seconds(n)) == n


@given(st.integers(min_value=0, max_value=2**50))
def test_a_size_reads_back_from_its_shortest_form(n: int) -> None:
    written = units.format_size(n)
    assert re.fullmatch(units.BYTES_PATTERN, written)
    assert units.size(written) == n


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["kbps", "Mbps", "Gbps"]))
def test_a_rate_in_bits_per_second_means_the_same_to_ascp(n: int, unit: str) -> None:
    ascp = units.ascp_rate(f"{n}{unit}")
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?[KMG]?", ascp)  # what ascp -l takes
    factor = {"kbps": 10**3, "Mbps": 10**6, "Gbps": 10**9}[unit]
    assert units.bits_per_second(ascp) == n * factor


@given(st.integers(min_value=1, max_value=10**9))
def test_plain_numbers_keep_their_old_meaning(n: int) -> None:
    assert units.seconds(n) == n
    assert units.seconds(str(n)) == n
    assert units.size(n) == n
    assert units.ascp_rate(n) == str(n)  # ascp's Kbps, passed through


@pytest.mark.parametrize(
    ("written", "value"),
    [("5s", 5), ("90s", 90), ("2m", 120), ("24h", 86400), ("1h30m", 5400), ("500ms", 0.5)],
)
def test_durations(written: str, value: float) -> None:
    assert units.seconds(written) == value
    assert re.fullmatch(units.DURATION_PATTERN, written)


@pytest.mark.parametrize(
    ("written", "value"),
    [("100GB", 100 * 10**9), ("1GiB", 2**30), ("10 MB", 10**7), ("1.5KB", 1500)],
)
def test_sizes(written: str, value: int) -> None:
    assert units.size(written) == value


@pytest.mark.parametrize(
    ("written", "ascp"),
    [
        ("100Mbps", "100M"),
        ("1.5Gbps", "1.5G"),
        ("800000bps", "800"),
        ("100m", "100m"),
        ("80%", "80%"),
        ("12 kbit/s", "12K"),
    ],
)
def test_rates(written: str, ascp: str) -> None:
    assert units.ascp_rate(written) == ascp
    assert re.fullmatch(units.RATE_PATTERN, written)


@pytest.mark.parametrize(
    ("parse", "written", "says"),
    [
        (units.seconds, "soon", "is not a duration"),
        (units.size, "10M", "unknown unit 'M'"),
        (units.size, "100Gb", "in bits"),
        (units.size, "0.5B", "not a whole number of bytes"),
        (units.ascp_rate, "100MB/s", "write 800Mbps"),
        (units.ascp_rate, "fast", "is not a rate"),
    ],
)
def test_mistakes_are_explained(parse: object, written: str, says: str) -> None:
    assert callable(parse)
    with pytest.raises(units.UnitError, match=re.escape(says)):
        parse(written)
