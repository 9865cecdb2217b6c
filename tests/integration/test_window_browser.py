"""The web window in a real headless Chromium (Debian's, driven by selenium through Debian's
chromium-driver) against a running daemon sending through the ascp simulator."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from hotfolder import report
from hotfolder.cli import web
from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.state import summary
from hotfolder.window.users import hash_line
from tests import manifests
from tests.helpers import ascp_config, running, wait_until

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
PASSWORD = "a web password for the test"
NOTES = Path("/work/notes")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (packaging/dev-env installs them)",
)


def children_of(pid: int) -> set[int]:
    """Every descendant of `pid`, from /proc (Chromium forks a zygote, a renderer, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    assert service.process is not None
    driver_pid = service.process.pid
    ours = {driver_pid, *children_of(driver_pid)}
    try:
        yield driver
    finally:
        driver.quit()
        service.stop()
        for pid in ours:  # anything left of what we started, by its id
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(alive(p) for p in ours), what="chromium to be gone")


def window_config(tmp: Path) -> config.Config:
    path = ascp_config(tmp, rate=2e6)  # slow enough to be seen sending
    data = yaml.safe_load(path.read_text())
    users = tmp / "http-users"
    users.write_text(hash_line("ada", PASSWORD) + "\n")
    data["http"] = {"listen": "127.0.0.1:0", "users_file": str(users)}
    path.write_text(yaml.safe_dump(data))
    return config.load(path)


def states_shown(driver: WebDriver) -> list[str]:
    """The states in the overview's tables, read in one go (the region is swapped live)."""
    shown = driver.execute_script(
        "return Array.from(document.querySelectorAll('#live tbody .badge'))"
        ".map(e => e.textContent);"
    )
    return [str(s) for s in shown]


def test_the_window_in_a_real_browser(tmp_path: Path, browser: WebDriver) -> None:
    cfg = window_config(tmp_path)
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        window = web.start(cfg, daemon)
        assert window is not None
        try:
            host, port = window.addresses[0]
            base = f"http://{host}:{port}"
            browser.get(base + "/")
            browser.execute_script("window.notReloaded = true;")

            # A manifest first: pending (its files are not there yet), shown without a reload.
            (drop / "m.xml").write_text(manifests.ooyala())
            wait_until(lambda: "pending" in states_shown(browser), what="pending on the page")
            (drop / "my_video.mov").write_bytes(os.urandom(3_000_000))
            (drop / "my_thumbnail.jpg").write_bytes(b"\xff\xd8" * 500)
            (drop / "caption-1.dfxp").write_text("<tt/>")
            wait_until(
                lambda: states_shown(browser) == ["complete"],
                timeout=60,
                what="complete on the page",
            )
            assert browser.execute_script("return window.notReloaded === true;")

            # The daemon feeds the window: /healthz says the loop turns, /metrics what was sent.
            assert urlopen(base + "/healthz", timeout=10).status == 200  # noqa: S310 (loopback)
            scraped = urlopen(base + "/metrics", timeout=10).read().decode()  # noqa: S310
            found = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(scraped)
                for s in family.samples
            }
            watch = cfg.watches[0].name
            sent = found[
                (
                    "hotfolder_bytes_sent_total",
                    (("target", cfg.watches[0].target), ("watch", watch)),
                )
            ]
            assert sent >= 3_000_000
            assert found[("hotfolder_pickup_seconds_count", ())] >= 1
            assert found[("hotfolder_watch_available", (("watch", watch),))] == 1.0

            # A failure: its page says what REPORT.txt says, reason and hint.
            hostile = 'ep<script>alert("x")&amp;é.xml'  # a '/' would be a folder
            (drop / hostile).write_text(manifests.ooyala(manifests.ooyala_item(video="../x.mov")))
            wait_until(
                lambda: daemon.journal.counts().get(State.FAILED) == 1, what="a failed submission"
            )
            row = daemon.journal.rows(frozenset({State.FAILED}))[0]
            assert "alert(" not in browser.title
            wait_until(lambda: "failed" in states_shown(browser), what="failed on the overview")
            browser.save_screenshot(str(tmp_path / "overview.png"))

            browser.get(f"{base}/submissions/{row.id}")
            shown = browser.find_element(By.CSS_SELECTOR, "pre.report").text.splitlines()
            expected = report.problem_lines(summary.problems(row))
            assert [line.strip() for line in shown] == [line.strip() for line in expected]
            assert any(line.strip().startswith("What to do:") for line in shown)
            assert browser.find_element(By.TAG_NAME, "h1").text.startswith(hostile)
            assert browser.find_elements(By.ID, "retry") == []  # logged out: no button
            owner = pwd.getpwuid(os.getuid()).pw_name  # who wrote the manifest: this test
            assert f"Dropped by\n{owner}" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
            browser.save_screenshot(str(tmp_path / "failed.png"))

            # Logged in: the button; a POST without the CSRF token is refused.
            browser.get(f"{base}/login?next=/submissions/{row.id}")
            browser.find_element(By.NAME, "user").send_keys("ada")
            browser.find_element(By.NAME, "password").send_keys(PASSWORD)
            browser.find_element(By.CSS_SELECTOR, "form.login button").click()
            wait_until(lambda: browser.find_elements(By.ID, "retry"), what="the retry button")
            refused = browser.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "fetch(arguments[0], {method: 'POST', credentials: 'same-origin',"
                " body: new URLSearchParams({})}).then(r => done(r.status));",
                f"{base}/submissions/{row.id}/retry",
            )
            assert refused == 403
            assert daemon.journal.get(row.id) is not None
            browser.find_element(By.ID, "retry").click()
            wait_until(
                lambda: "moved back to the drop folder" in browser.page_source,
                what="the retry's outcome",
            )
            assert daemon.journal.get(row.id) is None or (
                daemon.journal.get(row.id).state is not State.FAILED  # type: ignore[union-attr]
            )
        finally:
            window.stop()
    if NOTES.is_dir() and os.environ.get("HOTFOLDER_SCREENSHOTS_TO_NOTES"):
        for name in ("overview.png", "failed.png"):
            shutil.copy(tmp_path / name, NOTES / f"window-{name}")
