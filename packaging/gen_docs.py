"""The man page and the bash completion of `hotfolder`, generated from its argparse parser, so
neither can drift from what the command really accepts.

    python gen_docs.py man  > hotfolder.1
    python gen_docs.py bash > hotfolder.bash-completion

Run by debian/rules with the package's own venv (the parser is imported, not re-described).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from hotfolder.cli import main as cli

FILES = (
    ("/etc/hotfolder/hotfolder.yaml", "the service's configuration (a conffile)"),
    ("/usr/share/doc/hotfolder/hotfolder.example.yaml", "every configuration key, documented"),
    ("/var/lib/hotfolder/journal.sqlite", "the journal of every submission"),
    ("/etc/credstore/aspera-password", "the Aspera password, as a systemd credential"),
    ("/lib/systemd/system/hotfolder.service", "the hardened systemd unit"),
)
EXIT_CODES = (
    (cli.EXIT_OK, "success"),
    (cli.EXIT_FAILURE, "the operation failed (an unknown submission, a refused request)"),
    (cli.EXIT_CONFIG, "usage error, invalid configuration, or a failed start-up check"),
)


@dataclass(frozen=True)
class Command:
    """One subcommand (or sub-subcommand) as the docs need it."""

    name: str
    help: str
    parser: argparse.ArgumentParser
    children: tuple[Command, ...]


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> tuple[Command, ...]:
    found: list[Command] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        for name, sub in action.choices.items():
            full = f"{prefix}{name}"
            found.append(Command(full, helps.get(name, ""), sub, commands(sub, f"{full} ")))
    return tuple(found)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)
    ]


def takes_a_path(action: argparse.Action) -> bool:
    return action.type is Path


# --- man page -----------------------------------------------------------------------------


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().removeprefix("usage: ").split())


def _man_command(cmd: Command) -> list[str]:
    out = [
        f'.SS "{_roff(cmd.name)}"',
        _roff(cmd.help) + ".",
        ".PP",
        ".nf",
        _roff(_usage(cmd.parser)),
    ]
    out.append(".fi")
    for action in options(cmd.parser):
        names = ", ".join(action.option_strings) or str(action.metavar or action.dest).upper()
        if action.option_strings and action.nargs != 0:
            names += f" {action.metavar or action.dest.upper()}"
        out += [".TP", f"\\fB{_roff(names)}\\fR", _roff(action.help or "")]
    for child in cmd.children:
        out += _man_command(child)
    return out


def man_page(parser: argparse.ArgumentParser) -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds: the changelog's date
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    lines = [
        f'.TH HOTFOLDER 1 "{when:%Y-%m-%d}" "hotfolder {version("hotfolder")}" "User Commands"',
        ".SH NAME",
        f"hotfolder \\- {_roff(parser.description or '')}",
        ".SH SYNOPSIS",
        ".B hotfolder",
        ".I command",
        "[\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        "hotfolder watches drop folders; groups each manifest with the files it names; waits "
        "until they are stable; sends the media, then the manifest last on its own; archives "
        "what was sent and quarantines what failed with a report. Every state change is "
        "recorded in a journal, so a restart never sends a completed submission twice.",
        ".PP",
        "As a service: \\fBsystemctl status hotfolder\\fR, \\fBsystemctl reload hotfolder\\fR "
        "(checks the configuration first), \\fBjournalctl -u hotfolder SUBMISSION_ID=\\fIid\\fR.",
        ".SH COMMANDS",
    ]
    for cmd in commands(parser):
        lines += _man_command(cmd)
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_CODES:
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines.append(".SH FILES")
    for path, what in FILES:
        lines += [".TP", f"\\fI{_roff(path)}\\fR", _roff(what)]
    lines += [
        ".SH SEE ALSO",
        "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBsystemd.exec\\fR(5), "
        "\\fI/usr/share/doc/hotfolder/README.md\\fR",
    ]
    return "\n".join(lines) + "\n"


# --- bash completion ----------------------------------------------------------------------


def _words(parser: argparse.ArgumentParser, children: tuple[Command, ...]) -> str:
    words = [s for a in parser._actions for s in a.option_strings]
    words += [c.name.split()[-1] for c in children]
    return " ".join(words)


def bash_completion(parser: argparse.ArgumentParser) -> str:
    top = commands(parser)
    path_options = sorted(
        {
            s
            for c in (*top, *(g for c in top for g in c.children))
            for a in options(c.parser)
            if takes_a_path(a)
            for s in a.option_strings
        }
    )
    cases = []
    for c in top:
        words = shlex.quote(_words(c.parser, c.children))
        positional_path = any(takes_a_path(a) and not a.option_strings for a in options(c.parser))
        files = " files=1" if positional_path else ""
        cases.append(f"        {shlex.quote(c.name)}) words={words}{files} ;;")
    return "\n".join(
        [
            "# bash completion for hotfolder, generated from its argparse parser (gen_docs.py).",
            "_hotfolder() {",
            "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}",
            '    local cmd="" words="" files="" i',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            "        case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac",
            "    done",
            "    case $prev in",
            f"        {'|'.join(path_options)})",
            '            mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;',
            "    esac",
            "    case $cmd in",
            f"        '') words={shlex.quote(_words(parser, top))} ;;",
            *cases,
            "    esac",
            '    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")',
            '    if [ -n "$files" ] && [[ $cur != -* ]]; then',
            '        mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")',
            "    fi",
            "}",
            "complete -F _hotfolder hotfolder",
            "",
        ]
    )


def main(argv: list[str]) -> int:
    kinds = {"man": man_page, "bash": bash_completion}
    if len(argv) != 1 or argv[0] not in kinds:
        print(f"usage: gen_docs.py {{{'|'.join(kinds)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(kinds[argv[0]](cli._parser()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
