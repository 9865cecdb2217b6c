"""The stages import one way (the package docstring's list): a lower stage never imports a
higher one, so a newcomer can read the flow from the folders."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "daemon" / "hotfolder"
#: Lowest first. Top-level modules are leaves (everyone may import them).
STAGES = ("config", "intake", "assemble", "state", "transfer", "after", "service", "window", "cli")
#: Imports that break the direction today, each with the work that removes it. Empty is the goal.
KNOWN: set[tuple[str, str]] = set()


def stage_of(module: str) -> int:
    """-1 for a leaf, else the stage's rank; `module` is dotted below `hotfolder`."""
    head = module.split(".", 1)[0]
    if head == "__main__":  # `python -m hotfolder` is the command line
        head = "cli"
    return STAGES.index(head) if head in STAGES else -1


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "hotfolder":
                found |= {a.name for a in node.names}
            elif node.module.startswith("hotfolder."):
                found.add(node.module.removeprefix("hotfolder."))
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("hotfolder.")
                for a in node.names
                if a.name.startswith("hotfolder.")
            }
    return found


def violations() -> set[tuple[str, str, str]]:
    bad = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        own = stage_of(rel.replace("/", "."))
        for module in imports_of(path):
            if stage_of(module) > own:
                bad.add((rel, STAGES[stage_of(module)], module))
    return bad


def test_no_stage_imports_a_higher_one() -> None:
    unexpected = {v for v in violations() if (v[0], v[1]) not in KNOWN}
    assert unexpected == set(), "a lower stage imports a higher one"


def test_the_known_exceptions_are_still_real() -> None:
    """When the work that removes an exception is done, it must leave this list too."""
    still = {(v[0], v[1]) for v in violations()}
    assert still >= KNOWN


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_is_a_folder(stage: str) -> None:
    assert (PACKAGE / stage / "__init__.py").is_file()


def test_a_planted_upward_import_is_caught(tmp_path: Path) -> None:
    """The checker itself: a leaf importing the service stage is found."""
    leaf = tmp_path / "leafy.py"
    leaf.write_text("from hotfolder.service.daemon import Daemon\n")
    assert imports_of(leaf) == {"service.daemon"}
    assert stage_of("service.daemon") > stage_of("leafy")
