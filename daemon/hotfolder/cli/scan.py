"""`hotfolder scan`: what the daemon would do with a drop folder right now, without sending.

A one-shot look cannot watch a file for a whole window, so here a file counts as settled when
its mtime and ctime are at least `stability_seconds` old; the daemon itself also requires a
window with no change and no event. Everything else (parsing, rules, grouping, the journal's
memory of what was sent) is the daemon's own code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hotfolder import beneath
from hotfolder.assemble import grouping, manifest
from hotfolder.assemble.stability import EMPTY_FILE_FACTOR
from hotfolder.assemble.tracker import is_candidate
from hotfolder.config.settings import WatchConfig
from hotfolder.intake.watch import scan
from hotfolder.model import FileIdentity, Manifest, Problem, submission_id
from hotfolder.state.known import JournalKnown


@dataclass(frozen=True, slots=True)
class FileLook:
    path: str
    role: str
    size: int | None  # None: missing
    age_seconds: float | None
    settled: bool


@dataclass(slots=True)
class SubmissionLook:
    manifest: str
    verdict: str  # send | wait | fail | done | not-a-manifest
    submission_id: str | None = None
    format: str | None = None
    journal_state: str | None = None
    files: list[FileLook] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    waiting_for: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def survey(
    watch: WatchConfig, known: JournalKnown | None, now: float, shared: bool = False
) -> list[SubmissionLook]:
    """`known`: what the journal remembers (None: no journal yet); `shared`: a fleet's folder,
    whose ids leave out the inode (model.submission_id)."""
    return [
        _look(watch, rel, known, now, shared)
        for rel in sorted(scan(watch.path, watch.ignore, watch.own_folders))
        if is_candidate(rel)
    ]


def _look(
    watch: WatchConfig, rel: PurePosixPath, known: JournalKnown | None, now: float, shared: bool
) -> SubmissionLook:
    found = beneath.look(watch.path, rel)
    ident = found.identity
    if ident is None:
        return SubmissionLook(str(rel), "wait", waiting_for=["the manifest vanished"])
    base = submission_id(watch.name, rel, ident, shared=shared)
    sid = known.resolve(base) if known else base
    look = SubmissionLook(str(rel), "send", sid or base)
    if sid is None:
        row = known.journal.latest_generation(base) if known else None
        look.journal_state = str(row.state) if row else "sent (kept)"
        look.verdict = "done"
        return look
    if not found.is_file:
        _fail(
            look,
            Problem(
                "manifest-not-a-file",
                f"the manifest is {found.where or 'a link'}",
                "copy the manifest file itself into the drop folder",
            ),
        )
        return look
    look.files.append(_file(watch.path, rel, "manifest", watch, now))
    parsed = _parse(look, watch, rel, ident)
    if parsed is None:
        return look
    plan = grouping.plan(rel, parsed)
    look.format = str(parsed.format)
    for f in plan.files:
        look.files.append(_file(watch.path, f.relpath, str(f.kind), watch, now))
    if plan.problems:
        for p in plan.problems:
            _fail(look, p)
        return look
    look.waiting_for = [
        f"{f.path} ({'missing' if f.size is None else 'still changing'})"
        for f in look.files
        if not f.settled
    ]
    if look.waiting_for:
        look.verdict = "wait"
    return look


def _parse(
    look: SubmissionLook, watch: WatchConfig, rel: PurePosixPath, ident: FileIdentity
) -> Manifest | None:
    if ident.size > watch.max_manifest_bytes:
        _fail(
            look,
            Problem(
                "manifest-too-large",
                f"{ident.size} bytes is over the limit",
                "raise max_manifest_bytes if this really is the manifest",
            ),
        )
        return None
    try:
        return manifest.parse(beneath.read(watch.path, rel, ident.size), rel.name)
    except manifest.NotAManifest:
        look.verdict = "not-a-manifest"
    except manifest.ManifestError as err:
        _fail(look, Problem(err.code, err.message, err.hint, str(rel), err.line))
    return None


def _fail(look: SubmissionLook, problem: Problem) -> SubmissionLook:
    look.verdict = "fail"
    look.problems.append(problem)
    return look


def _file(
    root: Path, relpath: PurePosixPath, role: str, watch: WatchConfig, now: float
) -> FileLook:
    rel = str(relpath)
    found = beneath.look(root, relpath)  # a link is not followed: it counts as absent
    ident = found.identity if found.is_file else None
    if ident is None:
        return FileLook(rel, role, None, None, False)
    age = now - max(ident.mtime_ns, ident.ctime_ns) / 1e9
    window = watch.stability_seconds * (EMPTY_FILE_FACTOR if ident.size == 0 else 1)
    return FileLook(rel, role, ident.size, round(age, 1), age >= window)


def render(watch: str, looks: list[SubmissionLook]) -> str:
    if not looks:
        return f"[{watch}] no manifests\n"
    lines = []
    for look in looks:
        fmt = f" ({look.format})" if look.format else ""
        lines.append(f"[{watch}] {look.manifest}{fmt}: {_verdict(look)}")
        for f in look.files:
            size = "missing" if f.size is None else f"{f.size:,} B"
            state = "settled" if f.settled else ("-" if f.size is None else "changing")
            lines.append(f"    {f.role:<9} {f.path:<40} {size:>16}  {state}")
        for p in look.problems:
            where = f" (line {p.line})" if p.line else ""
            lines.append(f"    ! {p.message}{where}")
            if p.hint:
                lines.append(f"      what to do: {p.hint}")
    return "\n".join(lines) + "\n"


def _verdict(look: SubmissionLook) -> str:
    return {
        "send": "would be sent now",
        "wait": "waiting for " + ", ".join(look.waiting_for),
        "fail": f"would FAIL ({len(look.problems)} problem(s))",
        "done": f"already handled ({look.journal_state}): {look.submission_id}",
        "not-a-manifest": "not a manifest (ignored)",
    }[look.verdict]
