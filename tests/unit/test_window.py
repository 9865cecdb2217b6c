"""The web window against a real journal, through Flask's test client (no sockets): escaping,
the failure report's exact words, paths, login and CSRF, paging, /metrics and /healthz."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from hotfolder import report
from hotfolder.metrics import Counters
from hotfolder.model import FileIdentity, ManifestFormat, Problem, State, Submission, SubmissionFile
from hotfolder.state.journal import Journal
from hotfolder.state.reader import Cursor, Filters, JournalReader, _where
from hotfolder.window.app import Actions, Outcome, WindowSettings, create_app
from hotfolder.window.users import FREE_TRIES, Login, Throttle, UsersSource, hash_line

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(\"x\")</script>'quote'-été-日本"
PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def submission(sid: str, manifest: str, media: str = "a.mov", watch: str = "w") -> Submission:
    ident = FileIdentity(2_500_000, 1, 1, 5)
    return Submission(
        sid,
        watch,
        SubmissionFile(PurePosixPath(manifest), PurePosixPath(manifest), FileIdentity(30, 2, 2, 6)),
        (SubmissionFile(PurePosixPath(media), PurePosixPath(media), ident),),
        ManifestFormat.OOYALA_MRSS,
    )


class Acted:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def actions(self) -> Actions:
        def retry(sid: str, who: str) -> Outcome:
            self.calls.append(("retry", sid, who))
            return Outcome(True, f"{sid}: released")

        def hold(sid: str, who: str) -> Outcome:
            self.calls.append(("hold", sid, who))
            return Outcome(True, f"{sid}: held")

        return Actions(retry, hold)


class Window:
    def __init__(self, tmp: Path, read_requires_login: bool = False) -> None:
        self.journal = Journal(tmp / "journal.sqlite")
        self.reader = JournalReader(tmp / "journal.sqlite")
        self.clock = Clock()
        self.counters = Counters(self.clock)
        users = tmp / "users"
        users.write_text(f"# web users\n{hash_line('ada', PASSWORD)}\n")
        self.login = Login(UsersSource(users), Throttle(self.clock))
        self.acted = Acted()
        self.app: Flask = create_app(
            WindowSettings(
                watches=["w", "other"],
                version="9.9.9",
                read_requires_login=read_requires_login,
                tz=UTC,
                now=lambda: NOW,
            ),
            self.reader,
            self.counters,
            self.acted.actions(),
            self.login,
        )

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def close(self) -> None:
        self.reader.close()
        self.journal.close()


@pytest.fixture
def window(tmp_path: Path) -> Iterator[Window]:
    w = Window(tmp_path)
    yield w
    w.close()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: FlaskClient, password: str = PASSWORD, user: str = "ada") -> int:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"csrf": token, "user": user, "password": password})
    return answer.status_code


# -- hostile names ------------------------------------------------------------------------------


def test_hostile_names_are_shown_escaped_everywhere(window: Window) -> None:
    sub = submission("evil-1", f"{HOSTILE}.xml", media=f"{HOSTILE}.mov")
    window.journal.record_ready(sub, NOW, {"owner": HOSTILE})
    window.journal.record_failed(
        "evil-2", "w", PurePosixPath(f"{HOSTILE}.csv"), (Problem("bad", HOSTILE, HOSTILE),), NOW
    )
    client = window.client()
    for url in (
        "/",
        "/api/overview",
        "/submissions",
        "/submissions?q=%3Cscript",
        "/submissions/evil-1",
        "/submissions/evil-2",
        "/api/submissions/evil-2",
    ):
        page = client.get(url).get_data(as_text=True)
        if url.startswith("/api/"):
            page = client.get(url).get_json()["html"]
        assert "<script>alert" not in page, url
        assert html.escape("<script>alert", quote=False) in page, url
        assert "été-日本" in page, url


def test_path_parameters_cannot_read_files(window: Window, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:SECRET-CONTENT\n")
    client = window.client()
    for url in (
        f"/submissions/{secret}",
        "/submissions/../../../../etc/passwd",
        "/submissions/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        f"/api/submissions/..%2f..%2f{secret.name}",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/app.py",
    ):
        answer = client.get(url, follow_redirects=True)  # '//' is merged by a redirect
        body = answer.get_data(as_text=True)
        assert answer.status_code == 404, url
        assert "SECRET-CONTENT" not in body
        assert "root:x:" not in body
        assert "import" not in body


# -- a failure's reason -------------------------------------------------------------------------


def test_failed_page_shows_exactly_the_report_reason_and_hint(window: Window) -> None:
    problems = (
        Problem("missing-file", "video.mov is named in the manifest but is not there", "drop it"),
        Problem("bad-caption", "captions fr.vtt: no language", "name it like ep1.fr.vtt"),
    )
    window.journal.record_failed("f-1", "w", PurePosixPath("ep1.xml"), problems, NOW)
    page = window.client().get("/submissions/f-1").get_data(as_text=True)
    expected = report.problem_lines(problems)
    assert any("What to do: drop it" in line for line in expected)
    block = re.search(r'<pre class="report">(.*?)</pre>', page, re.S)
    assert block, "no report block"
    assert html.unescape(block.group(1)).splitlines() == expected


def test_a_transfer_failure_shows_its_hint_from_the_journal(window: Window) -> None:
    window.journal.record_ready(submission("t-1", "t.xml"), NOW)
    window.journal.transition("t-1", State.QUEUED, NOW)
    problem = Problem("timeout", "the transfer to 'nas' failed: timed out", "check the target")
    window.journal.transition(
        "t-1",
        State.FAILED,
        NOW,
        error_code="timeout",
        error_message="timed out",
        problems=(problem,),
    )
    page = window.client().get("/submissions/t-1").get_data(as_text=True)
    assert "What to do: check the target" in html.unescape(page)


# -- login, actions, CSRF ----------------------------------------------------------------------


def held(window: Window, sid: str = "h-1") -> None:
    window.journal.record_ready(submission(sid, f"{sid}.xml"), NOW)
    window.journal.transition(sid, State.HELD, NOW, error_code="held", error_message="held")


def test_retry_is_absent_logged_out_and_works_logged_in(window: Window) -> None:
    held(window)
    client = window.client()
    assert 'id="retry"' not in client.get("/submissions/h-1").get_data(as_text=True)
    answer = client.post("/submissions/h-1/retry", data={"csrf": "guess"})
    assert answer.status_code == 403
    assert log_in(client) == 303
    page = client.get("/submissions/h-1").get_data(as_text=True)
    assert 'id="retry"' in page
    answer = client.post("/submissions/h-1/retry", data={"csrf": csrf_of(page)})
    assert answer.status_code == 303
    assert window.acted.calls == [("retry", "h-1", "ada")]
    assert "h-1: released" in client.get("/submissions/h-1").get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(window: Window) -> None:
    held(window)
    client = window.client()
    assert log_in(client) == 303
    for data in ({}, {"csrf": ""}, {"csrf": "not-the-token"}):
        answer = client.post("/submissions/h-1/retry", data=data)
        assert answer.status_code == 403, data
    assert client.post("/login", data={"user": "ada", "password": PASSWORD}).status_code == 403
    assert window.acted.calls == []


def test_a_wrong_login_never_says_which_half_was_wrong(window: Window) -> None:
    wrong_password, wrong_name = window.client(), window.client()
    a = wrong_password.post(
        "/login",
        data={
            "csrf": csrf_of(wrong_password.get("/login").get_data(as_text=True)),
            "user": "ada",
            "password": "nope",
        },
    )
    b = wrong_name.post(
        "/login",
        data={
            "csrf": csrf_of(wrong_name.get("/login").get_data(as_text=True)),
            "user": "bob",
            "password": PASSWORD,
        },
    )
    assert a.status_code == b.status_code == 401
    strip = re.compile(r'name="csrf" value="[^"]+"')
    assert strip.sub("", a.get_data(as_text=True)) == strip.sub("", b.get_data(as_text=True))


def test_repeated_wrong_logins_are_slowed(window: Window) -> None:
    client = window.client()
    for _ in range(FREE_TRIES):
        assert log_in(client, "wrong") == 401
    assert log_in(client) == 429  # the right password too, until the wait is over
    window.clock.t += 0.5
    assert log_in(client) == 429
    window.clock.t += 1.0
    assert log_in(client) == 303


def test_reading_can_require_a_login(tmp_path: Path) -> None:
    w = Window(tmp_path, read_requires_login=True)
    try:
        client = w.client()
        answer = client.get("/submissions")
        assert answer.status_code == 302
        assert "/login" in answer.headers["Location"]
        assert client.get("/healthz").status_code in (200, 503)
        assert log_in(client) == 303
        assert client.get("/submissions").status_code == 200
    finally:
        w.close()


# -- paging ------------------------------------------------------------------------------------


def test_pages_by_key_visit_every_row_once_newest_first(window: Window) -> None:
    for i in range(130):
        at = NOW + timedelta(seconds=i // 3)  # ties in created_at: the id breaks them
        watch = "w" if i % 2 else "other"
        window.journal.record_ready(
            submission(f"s-{i:03d}", f"m{i}.xml", watch=watch), at, {"owner": f"u{i % 3}"}
        )
    seen: list[str] = []
    after: Cursor | None = None
    while True:
        page = window.reader.page(Filters(watch="w"), after, limit=17)
        seen += [r.id for r in page.rows]
        if page.next is None:
            break
        after = page.next
    expected = sorted(
        (r for r in window.journal.rows(limit=-1) if r.watch == "w"),
        key=lambda r: (r.created_at, r.id),
        reverse=True,
    )
    assert seen == [r.id for r in expected]
    owned = window.reader.page(Filters(owner="u1", state=State.READY), limit=200).rows
    assert {r.id for r in owned} == {f"s-{i:03d}" for i in range(130) if i % 3 == 1}
    named = window.reader.page(Filters(text="m12"), limit=200).rows
    assert {r.manifest for r in named} == {"m12.xml", *(f"m{i}.xml" for i in range(120, 130))}


def test_the_list_page_links_to_the_next_page(window: Window) -> None:
    for i in range(60):
        window.journal.record_ready(submission(f"s-{i:02d}", f"m{i}.xml"), NOW)
    client = window.client()
    first = client.get("/submissions?watch=w").get_data(as_text=True)
    found = re.search(r'href="([^"]+)" rel="next"', first)
    assert found
    second = client.get(html.unescape(found.group(1))).get_data(as_text=True)

    def ids(page: str) -> set[str]:
        return set(re.findall(r'class="id">([^<]+)<', page))

    assert ids(first) == {f"s-{i:02d}" for i in range(10, 60)}
    assert ids(second) == {f"s-{i:02d}" for i in range(10)}


def test_every_list_query_is_served_by_an_index(window: Window) -> None:
    """The plan, not a stopwatch: each filter walks an index in order (no sort of every row)."""
    db = window.reader._db()
    for filters in (
        Filters(),
        Filters(watch="w"),
        Filters(state=State.FAILED),
        Filters(owner="ada"),
        Filters(watch="w", state=State.FAILED),
    ):
        where, args = _where(filters)
        where.append("(created_at, id) < (?, ?)")
        sql = (
            "EXPLAIN QUERY PLAN SELECT * FROM submissions"  # noqa: S608 - our own fragments
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY created_at DESC, id DESC LIMIT 51"
        )
        plan = " ".join(str(r[3]) for r in db.execute(sql, [*args, "z", "z"]).fetchall())
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (filters, plan)
        assert "TEMP B-TREE" not in plan, (filters, plan)
    plan = " ".join(
        str(r[3])
        for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM submissions WHERE watch = ? AND state = ?",
            ("w", "ready"),
        ).fetchall()
    )
    assert "COVERING INDEX" in plan, plan


def test_counts_owners_and_oldest_read_by_seeks_agree_with_a_full_scan(window: Window) -> None:
    """watches, owners, counts and the oldest pending are read a seek at a time through the
    indexes; they must say what a plain scan of every row says."""
    for i in range(40):
        sub = submission(f"c-{i:02d}", f"c{i}.xml", watch=("w", "other", "third")[i % 3])
        window.journal.record_ready(sub, NOW + timedelta(seconds=i), {"owner": f"u{i % 4}"})
        if i % 5 == 0:
            window.journal.transition(sub.id, State.HELD, NOW)
    window.journal.record_pending("p-1", "other", PurePosixPath("p.xml"), NOW, {"owner": None})
    later = NOW + timedelta(hours=1)
    window.journal.record_pending("p-2", "other", PurePosixPath("q.xml"), later, {})
    db = window.reader._db()
    scanned: dict[str, dict[State, int]] = {}
    for watch, state, n in db.execute(
        "SELECT watch, state, COUNT(*) FROM submissions NOT INDEXED GROUP BY watch, state"
    ):
        scanned.setdefault(watch, {})[State(state)] = n
    assert window.reader.counts() == scanned
    assert window.reader.watches() == ["other", "third", "w"]
    assert window.reader.owners() == ["u0", "u1", "u2", "u3"]
    assert window.reader.oldest(State.PENDING) == {"other": NOW.isoformat()}


def test_text_finds_file_names_not_the_json_around_them(window: Window) -> None:
    """The quick LIKE on the files' JSON text only narrows; the names decide."""
    window.journal.record_ready(submission("t-1", "one.xml", media="Interview_take2.mov"), NOW)
    window.journal.record_ready(submission("t-2", "two.xml", media="café/b-roll.mov"), NOW)
    window.journal.record_ready(submission("t-3", "three.xml", media="plain.mov"), NOW)

    def found(text: str) -> set[str]:
        return {r.id for r in window.reader.page(Filters(text=text), limit=200).rows}

    assert found("view_take") == {"t-1"}
    assert found("INTERVIEW") == {"t-1"}  # LIKE: case does not matter (ASCII)
    assert found("café") == {"t-2"}  # stored as \u00e9 in the JSON text: the exact path
    assert found("relpath") == set()  # a key of the JSON, in every row: no name has it
    assert found("three") == {"t-3"}  # the manifest


# -- machines ----------------------------------------------------------------------------------


def test_metrics_parse_and_match_the_journal(window: Window) -> None:
    window.journal.record_ready(submission("r-1", "r1.xml"), NOW)
    window.journal.record_ready(submission("r-2", "r2.xml"), NOW)
    window.journal.record_pending(
        "p-1", "w", PurePosixPath("p.xml"), NOW - timedelta(seconds=90), {}
    )
    window.journal.record_failed("f-1", "other", PurePosixPath("f.xml"), (Problem("x", "y"),), NOW)
    window.counters.targets = {"w": "nas"}
    window.counters.ready("r-1")
    window.clock.t += 2.0
    window.counters.progress("r-1", "w", 1000)
    window.counters.progress("r-1", "w", 5000)
    window.counters.failed("other", "x")
    window.counters.watch_available("other", False)
    text = window.client().get("/metrics").get_data(as_text=True)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    counts = window.journal.counts()
    assert value("hotfolder_submissions", watch="w", state="ready") == 2 == counts[State.READY]
    assert value("hotfolder_submissions", watch="w", state="pending") == 1
    assert value("hotfolder_submissions", watch="other", state="failed") == 1
    assert value("hotfolder_submissions", watch="other", state="complete") == 0
    assert value("hotfolder_oldest_pending_seconds", watch="w") == 90
    assert value("hotfolder_oldest_pending_seconds", watch="other") == 0
    assert value("hotfolder_bytes_sent_total", watch="w", target="nas") == 5000
    assert value("hotfolder_failures_total", watch="other", code="x") == 1
    assert value("hotfolder_transfer_rate_bytes", watch="w") == 500
    assert value("hotfolder_pickup_seconds_count") == 1
    assert value("hotfolder_pickup_seconds_sum") == 2.0
    assert value("hotfolder_pickup_seconds_bucket", le="2.5") == 1
    assert value("hotfolder_pickup_seconds_bucket", le="1.0") == 0
    assert value("hotfolder_watch_available", watch="other") == 0
    assert value("hotfolder_watch_available", watch="w") == 1
    assert value("hotfolder_build_info", version="9.9.9") == 1


def test_healthz_follows_the_main_loop_and_the_journal(window: Window) -> None:
    client = window.client()
    assert client.get("/healthz").status_code == 503  # never turned
    window.counters.turned(journal_ok=True)
    assert client.get("/healthz").status_code == 200
    window.counters.turned(journal_ok=False)
    assert client.get("/healthz").status_code == 503
    window.counters.turned(journal_ok=True)
    window.clock.t += 60
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert "not turning" in answer.get_data(as_text=True)


def test_pages_carry_a_strict_content_security_policy(window: Window) -> None:
    answer = window.client().get("/")
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "unsafe" not in policy
    assert "<script>" not in answer.get_data(as_text=True)  # no inline script anywhere
