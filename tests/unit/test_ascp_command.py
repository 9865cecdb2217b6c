import base64
import itertools
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from threading import Event

import pytest

from hotfolder.clock import FakeClock
from hotfolder.transfer import faspmgr
from hotfolder.transfer.process import Child
from hotfolder.transfer.targets import Fault, Session, TransferError
from hotfolder.transfer.targets.ascp_command import (
    AscpSettings,
    build_argv,
    build_env,
    classify,
    fault_of,
    pair_list_text,
)
from hotfolder.transfer.targets.ascp_run import AscpRun
from tests.helpers import wait_until

SECRET = "s3cr3t-pw"


def settings(**kw: object) -> AscpSettings:
    base: dict[str, object] = {
        "name": "ooyala",
        "host": "transfer.example.com",
        "user": "editor",
        "work_dir": Path("/var/lib/hotfolder/ascp"),
    }
    return AscpSettings(**{**base, **kw})  # type: ignore[arg-type]


SESSION = Session("m-abc", "media", ((Path("/drop/a.mov"), PurePosixPath("a.mov")),))


def pairs(argv: tuple[str, ...]) -> set[tuple[str, str]]:
    """Every option with the word after it: "-l 100m" is in it only when "-l" stands alone
    as an option and "100m" follows it (a substring of "--dest64" or a value is not)."""
    return set(itertools.pairwise(argv))


def test_argv_is_the_documented_unattended_command_line() -> None:
    argv = build_argv(
        settings(target_rate="100m", min_rate="1m", cipher="aes-128"),
        SESSION,
        4242,
        Path("/state/m.list"),
    )
    assert argv[:3] == ("ascp", "-q", "--mode=send")
    for flag in (
        "--host=transfer.example.com",
        "--user=editor",
        "--policy=fair",
        "--overwrite=diff",
        "-d",
        "--file-pair-list=/state/m.list",
    ):
        assert argv.count(flag) == 1, flag
    for option, value in (
        ("-P", "33001"),
        ("-O", "33001"),
        ("-l", "100m"),
        ("-m", "1m"),
        ("-k", "2"),
        ("-c", "aes-128"),
        ("-M", "4242"),
    ):
        assert (option, value) in pairs(argv), f"{option} {value}"
    assert argv[-2] == "--dest64"
    assert base64.b64decode(argv[-1]) == b"/"
    tags = next(a for a in argv if a.startswith("--tags="))
    assert json.loads(tags.split("=", 1)[1]) == {
        "hotfolder": {"submission": "m-abc", "session": "media"}
    }
    assert "--file-manifest=text" not in argv


def test_the_manifest_session_asks_for_a_receipt() -> None:
    argv = build_argv(settings(), Session("m", "manifest", ()), 1, Path("/l"), Path("/r"))
    assert "--file-manifest=text" in argv
    assert "--file-manifest-path=/r" in argv


def test_no_secret_on_the_command_line_and_the_password_in_the_environment() -> None:
    argv = build_argv(settings(password_file=Path("/etc/pw")), SESSION, 1, Path("/l"))
    assert SECRET not in " ".join(argv)
    env = build_env({"PATH": "/bin", "ASPERA_SCP_TOKEN": "stale"}, SECRET)
    assert env["ASPERA_SCP_PASS"] == SECRET
    assert "ASPERA_SCP_TOKEN" not in env
    assert env["PATH"] == "/bin"


def test_key_and_host_fingerprint() -> None:
    argv = build_argv(
        settings(key_file=Path("/k/id_rsa"), sshfp="SHA256:abc"), SESSION, 1, Path("/l")
    )
    assert argv[argv.index("-i") : argv.index("-i") + 2] == ("-i", "/k/id_rsa")
    assert "--check-sshfp=SHA256:abc" in argv


def test_pair_list_alternates_source_and_destination() -> None:
    s = Session(
        "m",
        "media",
        (
            (Path("/d/a b.mov"), PurePosixPath("clips/a b.mov")),
            (Path("/d/t.jpg"), PurePosixPath("t.jpg")),
        ),
    )
    assert pair_list_text(s) == "/d/a b.mov\nclips/a b.mov\n/d/t.jpg\nt.jpg\n"
    with pytest.raises(TransferError):
        pair_list_text(Session("m", "media", ((Path("/d/a\nb"), PurePosixPath("a\nb")),)))


def frame(**fields: object) -> faspmgr.Frame:
    return faspmgr.Frame({k: str(v) for k, v in fields.items()})


def test_classify_success_needs_done_and_exit_zero() -> None:
    assert classify(frame(Type="DONE"), 0, [], True) is None
    bad = classify(frame(Type="DONE"), 1, [], True)
    assert bad is not None
    assert bad.retryable


@pytest.mark.parametrize(
    ("code", "description", "retryable"),
    [
        (19, "failed to authenticate", False),
        (44, "Failed to open TCP connection for SSH", True),
        (16, "connection lost", True),
        (41, "path outside docroot", False),
        (14, "Target address not available", False),
    ],
)
def test_classify_error_frames_by_code(code: int, description: str, retryable: bool) -> None:
    err = classify(frame(Type="ERROR", Code=code, Description=description), 1, [], True)
    assert err is not None
    assert err.code == f"fasp-{code}"
    assert err.retryable is retryable
    assert description in err.message


def test_classify_exits_without_a_verdict() -> None:
    usage = classify(None, 1, ["unrecognized option `--bogus'"], connected=False)
    assert usage is not None
    assert usage.code == "fasp-8"
    assert not usage.retryable
    early = classify(None, 1, ["ascp: failed to connect to management socket"], False)
    assert early is not None
    assert early.retryable
    after_init = classify(frame(Type="INIT"), 1, [], True)
    assert after_init is not None
    assert after_init.code == "early-exit"
    killed = classify(frame(Type="SESSION"), -9, [], True)
    assert killed is not None
    assert killed.retryable


@pytest.mark.parametrize(
    ("code", "fault"),
    [
        (19, Fault.ADMIN),  # wrong password
        (29, Fault.ADMIN),  # no licence
        (41, Fault.ADMIN),  # the configured destination is outside the docroot
        (26, Fault.ADMIN),  # the server's disk is read-only
        (16, Fault.TRANSIENT),
        (44, Fault.TRANSIENT),
        (56, Fault.EDITOR),  # illegal characters in a file name
    ],
)
def test_faults_are_classified_by_who_can_fix_them(code: int, fault: Fault) -> None:
    assert fault_of(code) is fault
    err = classify(frame(Type="ERROR", Code=code, Description="x"), 1, [], True)
    assert err is not None
    assert err.fault is fault


def test_a_connection_left_by_an_ascp_that_already_exited_is_accepted(tmp_path: Path) -> None:
    """Issue 16 item 3: a daemon paused right after the spawn finds ascp gone and its whole
    session waiting on the listener; it must read it, not call it 'no connection'."""
    with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
        port = listener.getsockname()[1]
        done = faspmgr.encode({"Type": "DONE", "TransfersPassed": 1})
        script = (
            "import socket,sys;"
            f"s=socket.create_connection(('127.0.0.1',{port}));"
            f"s.sendall({done!r});s.close()"
        )
        child = Child((sys.executable, "-c", script), dict(os.environ))
        assert child.wait(30) == 0, child.output()
        run = AscpRun(settings(), SESSION, tmp_path / "l", None, None, lambda _: None, Event())
        conn = run._accept(listener, child)
        assert conn is not None, "the waiting connection was ignored"
        with conn:
            assert run._read_frames(conn, child) is None
        child.stop(grace=0.1)
    assert run.last is not None
    assert run.last.type == "DONE"


class Ticking(FakeClock):
    """A clock that moves `step` seconds each time it is read: a deadline minutes away comes
    within a few reads, with no sleep and no real wait."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step = step

    def monotonic(self) -> float:
        self.advance(self.step)
        return super().monotonic()


def _quiet_child() -> Child:
    return Child((sys.executable, "-c", "import time; time.sleep(60)"), dict(os.environ))


def _in_a_thread(work: Callable[[], object]) -> list[object]:
    """Run `work` on a thread, wait (polling) for its result: a run reading the real clock
    would take its full two minutes, and this fails it long before."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    wait_until(lambda: result, timeout=10, what="the run to end by its clock")
    return result


def test_a_stalled_session_is_cancelled_by_the_clock_it_was_given(tmp_path: Path) -> None:
    run = AscpRun(settings(stall_timeout=120), SESSION, tmp_path / "l", None, None, print, Event())
    run.clock = Ticking(50)
    ours, ascps = socket.socketpair()
    child = _quiet_child()
    try:
        with ours, ascps:
            (err,) = _in_a_thread(lambda: run._read_frames(ours, child))
            assert isinstance(err, TransferError)
            assert err.code == "stalled"
            assert b"CANCEL" in ascps.recv(4096)
    finally:
        child.stop(grace=0.1)


def test_an_ascp_that_never_connects_is_given_up_by_the_clock(tmp_path: Path) -> None:
    run = AscpRun(settings(connect_timeout=15), SESSION, tmp_path / "l", None, None, print, Event())
    run.clock = Ticking(10)
    child = _quiet_child()
    try:
        with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
            assert _in_a_thread(lambda: run._accept(listener, child)) == [None]
    finally:
        child.stop(grace=0.1)
