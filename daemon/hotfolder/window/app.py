"""The window's web application: pages, the live JSON they poll, actions, /metrics, /healthz.

Flask (with Jinja2's autoescaping on every template: a manifest called `<script>` is shown as
text) because it is small, well kept and WSGI, so a production server (waitress, see `server`)
runs it in a bounded pool of threads. Every read goes through a read-only `reading.Reader`;
the only writes are the two operator actions, which the wiring hands in as `Actions` (the same
code as `hotfolder retry` and `hotfolder hold`).

Security: sessions in a signed cookie (HttpOnly, SameSite=Strict, Secure behind https), a CSRF
token on every POST, a login that never says which half was wrong and slows repeated failures
(`users.Throttle`), a strict Content-Security-Policy (no inline script), and submission ids
used only as bound SQL parameters: no request ever names a file.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode

import structlog
from flask import (
    Flask,
    Response,
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from hotfolder.metrics import Counters
from hotfolder.model import State
from hotfolder.state.reader import Cursor, Filters
from hotfolder.window import exposition, views
from hotfolder.window.reading import Reader
from hotfolder.window.users import Login, Verdict

log = structlog.get_logger()

#: /healthz fails once the main loop has not turned for this long (it turns every second).
HEARTBEAT_LIMIT = 10.0
#: How often the pages ask for news (the <meta> and the script agree).
POLL_MS = 2000


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class Actions:
    """The operator actions, as `hotfolder retry`/`hold` do them; `who` is the logged-in user."""

    retry: Callable[[str, str], Outcome]
    hold: Callable[[str, str], Outcome]


@dataclass(frozen=True, slots=True)
class WindowSettings:
    watches: Sequence[str]
    version: str
    read_requires_login: bool = False
    public_url: str | None = None
    tz: tzinfo | None = None  # None: the workstation's zone
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    journal_writable: Callable[[], bool] = field(default=lambda: True)
    #: The journal is a fleet's (issue 13): lists and pages name each submission's node.
    fleet: bool = False
    #: What /metrics counts (watch -> state -> n): this node's own work in a fleet; None
    #: counts the whole journal (a single workstation's is all its own).
    own_counts: Callable[[], Mapping[str, Mapping[State, int]]] | None = None


def create_app(  # noqa: PLR0915 - a closure per route, sharing the app's parts
    settings: WindowSettings,
    reader: Reader,
    counters: Counters,
    actions: Actions,
    login: Login | None,
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # sessions end with the process: log in again
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(settings.public_url and settings.public_url.startswith("https")),
        MAX_CONTENT_LENGTH=64 * 1024,  # a login form, a CSRF token: nothing bigger is posted
    )
    collector = exposition.HotfolderCollector(
        reader,
        counters,
        settings.watches,
        settings.version,
        settings.now,
        own_counts=settings.own_counts,
    )
    metrics_registry = exposition.registry(collector)

    def user() -> str | None:
        name = session.get("user")
        return name if isinstance(name, str) else None

    def csrf_token() -> str:
        token = session.get("csrf")
        if not isinstance(token, str):
            token = session["csrf"] = secrets.token_urlsafe(32)
        return token

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "user": user(),
            "csrf_token": csrf_token,
            "can_login": login is not None,
            "poll_ms": POLL_MS,
            "version": settings.version,
            "fleet": settings.fleet,
        }

    @app.before_request
    def _guard() -> Response | None:
        if request.method == "POST":
            sent = request.form.get("csrf", "")
            expected = session.get("csrf")
            if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
                abort(403, "the form expired or did not come from this page; reload and try again")
        public = request.endpoint in ("login", "healthz", "metrics", "static")
        if settings.read_requires_login and not public and user() is None:
            return redirect(url_for("login", next=request.full_path))  # type: ignore[return-value]
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    def now() -> datetime:
        return settings.now()

    # -- pages ------------------------------------------------------------------------------

    def overview_data() -> views.Overview:
        return views.overview(reader, counters, settings.watches, now(), settings.tz)

    @app.get("/")
    def overview() -> str:
        return render_template("overview.html", o=overview_data())

    @app.get("/api/overview")
    def overview_json() -> Response:
        html = render_template("_overview_body.html", o=overview_data())
        return jsonify({"html": html})

    def filters() -> Filters:
        state = request.args.get("state") or None
        return Filters(
            watch=request.args.get("watch") or None,
            state=State(state) if state in set(State) else None,
            owner=request.args.get("owner") or None,
            text=(request.args.get("q") or "").strip()[:200] or None,
        )

    @app.get("/submissions")
    def submissions() -> str:
        wanted = filters()
        after_at, after_id = request.args.get("after_at"), request.args.get("after_id")
        after = Cursor(after_at, after_id) if after_at and after_id else None
        page = reader.page(wanted, after)
        at = now()
        lines = [views.line(r, at, counters, settings.tz) for r in page.rows]
        kept = {
            k: v for k, v in request.args.items() if k in ("watch", "state", "owner", "q") and v
        }
        next_url = (
            url_for("submissions")
            + "?"
            + urlencode({**kept, "after_at": page.next.created_at, "after_id": page.next.id})
            if page.next
            else None
        )
        return render_template(
            "list.html",
            lines=lines,
            wanted=wanted,
            watches=sorted(settings.watches),
            states=[str(s) for s in views.STATE_ORDER],
            owners=reader.owners(),
            next_url=next_url,
            first_url=url_for("submissions") + ("?" + urlencode(kept) if kept else ""),
            paged=after is not None,
        )

    def detail_of(sid: str) -> views.Detail:
        row = reader.get(sid)  # a bound parameter: an id names a row, never a file
        if row is None:
            abort(404, "no such submission in the journal")
        return views.detail(row, reader.history(sid), now(), counters, settings.tz)

    @app.get("/submissions/<path:sid>")
    def submission(sid: str) -> str:
        return render_template("submission.html", d=detail_of(sid))

    @app.get("/api/submissions/<path:sid>")
    def submission_json(sid: str) -> Response:
        d = detail_of(sid)
        answer = {"state": d.line.state, "html": render_template("_submission_body.html", d=d)}
        if settings.fleet:
            answer["node"] = d.line.node
        return jsonify(answer)

    def act(sid: str, name: str, action: Callable[[str, str], Outcome]) -> Response:
        who = user()
        if who is None:
            abort(403, "log in to act on submissions")
        outcome = action(sid, who)
        log.info(
            "operator action from the web",
            action=name,
            submission_id=sid,
            user=who,
            done=outcome.ok,
            result=outcome.message,
        )
        session["flash"] = outcome.message
        # A retried failure leaves the journal (its files come back as a new drop).
        back = url_for("submission", sid=sid) if reader.get(sid) else url_for("overview")
        return redirect(back, 303)  # type: ignore[return-value]

    @app.post("/submissions/<path:sid>/retry")
    def retry(sid: str) -> Response:
        return act(sid, "retry", actions.retry)

    @app.post("/submissions/<path:sid>/hold")
    def hold(sid: str) -> Response:
        return act(sid, "hold", actions.hold)

    @app.context_processor
    def _flash() -> dict[str, Any]:
        return {"flash": session.pop("flash", None) if request.method == "GET" else None}

    # -- login ------------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "POST"], endpoint="login")
    def login_page() -> Any:
        if login is None:
            abort(404, "no users are configured (http.users_file)")
        message, status = "", 200
        if request.method == "POST":
            name = request.form.get("user", "")[:200]
            password = request.form.get("password", "")[:1000]
            verdict, wait = login.check(name, password, request.remote_addr or "")
            if verdict is Verdict.OK:
                session.clear()
                session["user"] = name
                csrf_token()  # a new token for the new session
                log.info("web login", user=name, client=request.remote_addr)
                target = request.args.get("next", "")
                # Only a path on this site: never a redirect to another host.
                if not target.startswith("/") or target.startswith("//"):
                    target = url_for("overview")
                return redirect(target, 303)
            log.warning("web login refused", user=name, client=request.remote_addr, why=verdict)
            if verdict is Verdict.SLOWED:
                message, status = f"Too many wrong logins: try again in {wait:.0f} s.", 429
            else:
                message, status = "Wrong user name or password.", 401
        return render_template("login.html", message=message), status

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return redirect(url_for("overview"), 303)  # type: ignore[return-value]

    # -- for machines -----------------------------------------------------------------------

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(exposition.render(metrics_registry), content_type=exposition.CONTENT_TYPE)

    @app.get("/healthz")
    def healthz() -> Response:
        snap = counters.snapshot()
        turning = snap.heartbeat_age is not None and snap.heartbeat_age < HEARTBEAT_LIMIT
        writable = snap.journal_ok and settings.journal_writable()
        if turning and writable:
            return Response("ok\n", 200, content_type="text/plain")
        why = "the main loop is not turning" if not turning else "the journal is not writable"
        return Response(f"unhealthy: {why}\n", 503, content_type="text/plain")

    @app.errorhandler(403)
    @app.errorhandler(404)
    def _refused(err: Any) -> tuple[str, int]:
        return render_template("error.html", message=err.description, code=err.code), err.code

    return app
