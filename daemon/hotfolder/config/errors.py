"""A config problem, where it is (file, line, key path) and what to do: what every step of
loading reports, all at once."""

from __future__ import annotations

from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ConfigError:
    file: str
    line: int | None
    path: KeyPath
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" at '{format_path(self.path)}':" if self.path else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{where}:{key} {self.message}{hint}"


class InvalidConfig(Exception):
    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def line_of(path: KeyPath, lines: dict[KeyPath, int]) -> int | None:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)
