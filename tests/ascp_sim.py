"""An ascp simulator: a test peer, never a product path.

Takes the same command line as the real ascp 3.9 (the options hotfolder uses, and rejects
others as ascp does), connects to `-M`, speaks FASPMGR 2 with the real frame order and field
names (INIT, SESSION, NOTIFICATION, STATS, STOP, FILEERROR, DONE / ERROR), copies the files byte
for byte under a destination root with a `.partial` suffix until complete, honours `-k` resume
and `--overwrite`, writes an ascp-style file-manifest receipt, and injects faults.

It deliberately does not import hotfolder: frames are written by its own code.

Environment:
  ASCP_SIM_ROOT      the server's docroot (required)
  ASCP_SIM_STATE     a folder for the session counter and the session log (required)
  ASCP_SIM_PASSWORD  if set, ASPERA_SCP_PASS must equal it, else error 19
  ASCP_SIM_RATE      bytes per second (default 50 MB/s); STATS flow every 0.1 s. A RATE
                     frame on the management port (Rate: Kbps) changes it from the next STATS
                     on; each change is logged in rates.jsonl (and the record's "rates")
  ASCP_SIM_LOGIN_S   seconds the SSH connection and login take (default 0.05)
  ASCP_SIM_RECORD_STARTS  if set, log each session's start (starts.jsonl) and each file
                     renamed into place (landed.jsonl), for the torture test
  ASCP_SIM_FAULTS    JSON list of {"session": n, "file": name, "at_byte": n, "kind": k,
                     "code": c, "description": d}; kinds: error, exit_before_connect,
                     exit_after_init, look_early (sources looked at before INIT), stall, kill
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

VALUE_OPTIONS = {"-P", "-O", "-l", "-m", "-k", "-c", "-i", "-M"}
LONG_VALUE = {
    "--mode",
    "--host",
    "--user",
    "--policy",
    "--overwrite",
    "--file-manifest",
    "--file-manifest-path",
    "--tags",
    "--file-pair-list",
    "--file-list",
    "--check-sshfp",
    "--partial-file-suffix",
}
FLAGS = {"-q", "-d", "-T", "-p", "--dest64"}
CHUNK = 256 * 1024
ESC = "\x1b"


class Stop(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def parse_argv(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in FLAGS:
            opts[arg] = "yes"
        elif arg in VALUE_OPTIONS:
            i += 1
            opts[arg] = argv[i]
        elif arg.startswith("--") and arg.split("=", 1)[0] in LONG_VALUE and "=" in arg:
            key, value = arg.split("=", 1)
            opts[key] = value
        elif arg.startswith("-"):
            print(f"unrecognized option `{arg}'", file=sys.stderr)
            sys.exit(1)
        else:
            positional.append(arg)
        i += 1
    if opts.get("--overwrite", "diff") not in ("never", "always", "diff", "diff+older", "older"):
        print(
            "ascp: bad argument to --overwrite; need {never|always|older|diff|diff+older}",
            file=sys.stderr,
        )
        sys.exit(1)
    return opts, positional


def escape(value: str) -> str:
    return value.replace(ESC, ESC + ESC).replace("\n", ESC + "n").replace("\r", ESC + "r")


class Mgmt:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(None)
        self.cancelled = threading.Event()
        self.lock = threading.Lock()
        self.new_rate_kbps: int | None = None  # the last RATE received, not yet applied
        threading.Thread(target=self._listen, daemon=True).start()

    def send(self, **fields: Any) -> None:
        lines = ["FASPMGR 2", *(f"{k}: {escape(str(v))}" for k, v in fields.items()), "", ""]
        with self.lock:
            self.sock.sendall("\n".join(lines).encode())

    def _listen(self) -> None:
        buffer = b""
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\n\n" in buffer:  # one whole frame, its own parser (no hotfolder import)
                frame, buffer = buffer.split(b"\n\n", 1)
                fields = dict(
                    line.split(": ", 1) for line in frame.decode().splitlines() if ": " in line
                )
                if fields.get("Type") == "CANCEL":
                    self.cancelled.set()
                elif fields.get("Type") == "RATE":
                    self.new_rate_kbps = int(fields["Rate"])


class Session:
    def __init__(self, opts: dict[str, str], positional: list[str]) -> None:
        self.opts = opts
        self.root = Path(os.environ["ASCP_SIM_ROOT"])
        self.state = Path(os.environ["ASCP_SIM_STATE"])
        self.rate = float(os.environ.get("ASCP_SIM_RATE", "50e6"))
        self.id = str(uuid.uuid4())
        self.number = self._next_number()
        self.faults = [
            f
            for f in json.loads(os.environ.get("ASCP_SIM_FAULTS", "[]"))
            if f.get("session", self.number) == self.number
        ]
        dest = positional[-1] if positional else "/"
        if "--dest64" in opts:
            dest = base64.b64decode(dest).decode()
        self.dest = self.root / dest.lstrip("/")
        self.pairs = self._pairs()
        self.record: dict[str, Any] = {
            "session": self.number,
            "pid": os.getpid(),
            "id": self.id,
            "files": [d for _, d in self.pairs],
            "tags": opts.get("--tags"),
            "resume": opts.get("-k"),
            "target_rate": opts.get("-l"),
            "started": time.time(),
            "rates": [],
        }
        self.passed = self.skipped = 0
        self.sent_bytes = 0
        self.mgmt: Mgmt | None = None

    def _next_number(self) -> int:
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / "counter", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            n = int(f.read() or 0) + 1
            f.seek(0)
            f.truncate()
            f.write(str(n))
        return n

    def _pairs(self) -> list[tuple[str, str]]:
        if "--file-pair-list" in self.opts:
            lines = Path(self.opts["--file-pair-list"]).read_text(encoding="utf-8").splitlines()
            if len(lines) % 2:
                print("ascp: Error reading file list from file/stdin, exiting.", file=sys.stderr)
                sys.exit(1)
            return list(zip(lines[::2], lines[1::2], strict=True))
        lines = Path(self.opts["--file-list"]).read_text(encoding="utf-8").splitlines()
        return [(line, Path(line).name) for line in lines]

    def fault(self, kind: str, file: str | None = None) -> dict[str, Any] | None:
        found: dict[str, Any] | None = next(
            (
                f
                for f in self.faults
                if f["kind"] == kind and (file is None or f.get("file") in (None, file))
            ),
            None,
        )
        return found

    def log(self, **extra: Any) -> None:
        self.record.update(extra, ended=time.time())
        with open(self.state / "sessions.jsonl", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps(self.record) + "\n")

    # -- the session ------------------------------------------------------------------

    def record_start(self) -> None:
        """Before anything else: what this session is about to send, and what the server
        already holds complete. The torture test reads it to find duplicates and disorder."""
        if not os.environ.get("ASCP_SIM_RECORD_STARTS"):
            return

        def complete(src: Path, dest: Path) -> bool:
            return dest.is_file() and src.is_file() and dest.read_bytes() == src.read_bytes()

        server = {p.name: True for p in self.dest.glob("*") if not p.name.endswith(".partial")}
        entry = {
            "session": self.number,
            "pid": os.getpid(),
            "at": time.time(),
            "files": [d for _, d in self.pairs],
            "already_complete": {d: complete(Path(s), self.dest / d) for s, d in self.pairs},
            "server_complete": server,
        }
        with open(self.state / "starts.jsonl", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def record_landed(self, name: str) -> None:
        """A file renamed into place at the server: what an ingest server acts on. The
        torture test counts a manifest landing twice as a duplicate."""
        if not os.environ.get("ASCP_SIM_RECORD_STARTS"):
            return
        with open(self.state / "landed.jsonl", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps({"session": self.number, "name": name, "at": time.time()}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def run(self) -> int:
        self.record_start()
        if self.fault("exit_before_connect"):
            print("ascp: failed to connect to management socket, exiting.", file=sys.stderr)
            self.log(result="exit_before_connect")
            return 1
        try:
            self.mgmt = Mgmt(int(self.opts["-M"]))
        except OSError:
            print(
                f"ascp: required management connection to port localhost:{self.opts['-M']} failed.",
                file=sys.stderr,
            )
            return 1
        # look_early: an ascp that looks at its sources before the daemon reads its INIT (a
        # daemon slower than the login): what is missing now is reported missing after INIT.
        early = self.fault("look_early") is not None
        unseen = [src for src, _ in self.pairs if early and not Path(src).is_file()]
        self.mgmt.send(Type="INIT", SessionId=self.id, Direction="Send", Operation="Transfer")
        if unseen:
            self.mgmt.send(
                Type="FILEERROR",
                File=unseen[0],
                Code=4,
                Description="No such file or directory",
                SessionId=self.id,
            )
            self.mgmt.send(Type="ERROR", Loss=0, Code=4, Description="No such file or directory")
            self.log(result="error", code=4)
            return 1
        if self.fault("exit_after_init"):
            self.log(result="exit_after_init")
            return 1
        try:
            self._session_frame()  # real ascp 3.9: INIT, SESSION, then the login's verdict
            self._authenticate()
            self._notification()
            self._transfer()
        except Stop as stop:
            self.mgmt.send(
                Type="ERROR",
                Loss=0,
                Code=stop.code,
                Description=stop.description,
                SessionId=self.id,
            )
            print(f"Session Stop  (Error: {stop.description})")
            self.log(result="error", code=stop.code)
            return 1
        self.mgmt.send(
            Type="DONE",
            SessionId=self.id,
            TransfersAttempted=len(self.pairs),
            TransfersPassed=self.passed,
            TransfersFailed=0,
            TransfersSkipped=self.skipped,
            TransferBytes=self.sent_bytes,
        )
        self.log(result="done", bytes=self.sent_bytes)
        return 0

    def _authenticate(self) -> None:
        # The real ascp connects over SSH and logs in between SESSION and its first look at
        # a source (test_ascp_real: INIT, SESSION, then the SSH error); never instantaneous.
        time.sleep(float(os.environ.get("ASCP_SIM_LOGIN_S", "0.05")))
        wanted = os.environ.get("ASCP_SIM_PASSWORD")
        if wanted is not None and os.environ.get("ASPERA_SCP_PASS") != wanted:
            raise Stop(19, "failed to authenticate")

    def _session_frame(self) -> None:
        assert self.mgmt is not None
        self.mgmt.send(
            Type="SESSION",
            Rate=10000,
            MinRate=0,
            SessionId=self.id,
            User=self.opts.get("--user", ""),
            Host=self.opts.get("--host", ""),
            Encryption="Yes",
            Adaptive="Adaptive",
            Direction="Send",
            Remote="No",
            Port=self.opts.get("-O", 33001),
            Source=self.pairs[0][0] if self.pairs else "",
            Destination=str(self.dest),
            Operation="Transfer",
            TCPPort=self.opts.get("-P", 33001),
            Cipher=self.opts.get("-c", "aes-128"),
            ResumePolicy=f"policy_resume_{self.opts.get('-k', '0')}",
            OverwritePolicy=f"overwrite_{self.opts.get('--overwrite', 'diff')}",
            ManifestPolicy=f"manifest_{self.opts.get('--file-manifest', 'none')}",
            Precalc="Yes",
            Keepalive="No",
        )

    def _notification(self) -> None:
        assert self.mgmt is not None
        total = sum(Path(src).stat().st_size for src, _ in self.pairs if Path(src).exists())
        self.mgmt.send(
            Type="NOTIFICATION",
            PreTransferFiles=len(self.pairs),
            PreTransferDirs=0,
            PreTransferBytes=total,
            SessionId=self.id,
        )

    def _transfer(self) -> None:
        receipt = self._open_receipt()
        started = time.monotonic()
        for src, dest in self.pairs:
            self._send_file(Path(src), self.dest / dest, dest, started)
            if receipt is not None:
                receipt.write(f"{self.dest / dest}\n")
                receipt.flush()
        if receipt is not None:
            receipt.close()
            inprogress = Path(receipt.name)
            inprogress.rename(inprogress.with_suffix(""))

    def _open_receipt(self) -> Any:
        if self.opts.get("--file-manifest") != "text":
            return None
        folder = Path(self.opts.get("--file-manifest-path", str(self.dest)))
        folder.mkdir(parents=True, exist_ok=True)
        return open(folder / f"aspera-transfer-{self.id}-manifest.txt.aspera-inprogress", "w")

    def _send_file(self, src: Path, target: Path, name: str, started: float) -> None:
        assert self.mgmt is not None
        if not src.is_file():
            self.mgmt.send(
                Type="FILEERROR",
                File=str(src),
                Code=4,
                Description="No such file or directory",
                SessionId=self.id,
            )
            raise Stop(4, "No such file or directory")
        size = src.stat().st_size
        overwrite = self.opts.get("--overwrite", "diff")
        if target.exists() and (
            overwrite == "never"
            or (
                overwrite.startswith("diff")
                and target.stat().st_size == size
                and target.read_bytes() == src.read_bytes()
            )
        ):
            self.skipped += 1
            self.mgmt.send(
                Type="STOP",
                File=str(target),
                Size=size,
                Written=0,
                Bytescont=size,
                SessionId=self.id,
            )
            return
        partial = target.with_name(target.name + ".partial")
        target.parent.mkdir(parents=True, exist_ok=True)
        offset = 0
        if self.opts.get("-k", "0") != "0" and partial.exists():
            offset = min(partial.stat().st_size, size)  # resume where the last try stopped
        self._copy(src, partial, offset, size, name, started)
        partial.rename(target)
        self.record_landed(name)
        self.passed += 1
        self.mgmt.send(
            Type="STOP",
            File=str(target),
            Size=size,
            Written=size - offset,
            Bytescont=size,
            StartByte=offset,
            SessionId=self.id,
        )

    def _copy(
        self, src: Path, partial: Path, offset: int, size: int, name: str, started: float
    ) -> None:
        assert self.mgmt is not None
        error, stall, kill = (self.fault(k, name) for k in ("error", "stall", "kill"))
        last_stats = 0.0
        with open(src, "rb") as fin, open(partial, "r+b" if offset else "wb") as fout:
            fin.seek(offset)
            fout.seek(offset)
            fout.truncate()
            pos = offset
            while pos < size or size == 0:
                for fault in (error, stall, kill):
                    if fault and pos >= fault.get("at_byte", 0):
                        self._inject(fault, pos)
                if self.mgmt.cancelled.is_set():
                    raise Stop(28, "Cancelled by user")
                chunk = fin.read(min(CHUNK, size - pos)) if size else b""
                fout.write(chunk)
                fout.flush()
                pos += len(chunk)
                self.sent_bytes += len(chunk)
                time.sleep(len(chunk) / self.rate)  # the simulated link's speed
                now = time.monotonic()
                if now - last_stats >= 0.1 or pos >= size:
                    last_stats = now
                    self.mgmt.send(
                        Type="STATS",
                        File=name,
                        TransferBytes=self.sent_bytes,
                        StartByte=offset,
                        Rate=int(self.rate * 8 / 1000),
                        Loss=0,
                        Elapsedusec=int((now - started) * 1e6),
                        SessionId=self.id,
                    )
                    self._apply_rate()
                if size == 0:
                    break

    def _apply_rate(self) -> None:
        """A RATE received since the last STATS: the link goes at it from now on, so the
        next STATS reports it."""
        assert self.mgmt is not None
        kbps = self.mgmt.new_rate_kbps
        if kbps is None:
            return
        self.mgmt.new_rate_kbps = None
        self.rate = kbps * 1000 / 8
        change = {"session": self.number, "kbps": kbps, "at_byte": self.sent_bytes}
        self.record["rates"].append(change)
        with open(self.state / "rates.jsonl", "a") as f:  # at once: a cancelled session
            fcntl.flock(f, fcntl.LOCK_EX)  # may be stopped before its record is written
            f.write(json.dumps(change) + "\n")

    def _inject(self, fault: dict[str, Any], pos: int) -> None:
        assert self.mgmt is not None
        kind = fault["kind"]
        if kind == "error":
            self.mgmt.send(
                Type="FILEERROR",
                File=fault.get("file", ""),
                Code=fault["code"],
                Description=fault.get("description", "injected"),
                SessionId=self.id,
            )
            raise Stop(int(fault["code"]), fault.get("description", "injected error"))
        if kind == "kill":
            self.log(result="killed", at_byte=pos)
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "stall":
            self.log(result="stalled", at_byte=pos)
            while not self.mgmt.cancelled.wait(0.05):
                pass
            raise Stop(28, "Cancelled by user")


def main() -> int:
    opts, positional = parse_argv(sys.argv[1:])
    if "-A" in sys.argv:
        print("ascp version 3.9.0 (hotfolder simulator)")
        return 0
    signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
    return Session(opts, positional).run()


if __name__ == "__main__":
    sys.exit(main())
