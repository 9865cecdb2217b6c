"""The config's YAML, with the line of every key (for messages) and keys given twice (YAML
silently keeps the last) reported."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from hotfolder.config.errors import ConfigError, KeyPath


def read_yaml(text: str, filename: str) -> tuple[Any, dict[KeyPath, int], list[ConfigError]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        return (
            None,
            {},
            [
                ConfigError(
                    filename,
                    line,
                    (),
                    f"not valid YAML: {problem}",
                    "check indentation and quoting on that line",
                )
            ],
        )
    if node is None:
        return {}, {}, []
    lines: dict[KeyPath, int] = {}
    duplicates = list(_index_lines(node, (), lines, filename))
    return data, lines, duplicates


def _index_lines(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], filename: str
) -> Iterator[ConfigError]:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield ConfigError(
                    filename,
                    key_node.start_mark.line + 1,
                    (*path, key),
                    "key given twice",
                    "keep one; YAML silently uses the last",
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            yield from _index_lines(value_node, (*path, key), lines, filename)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _index_lines(item, (*path, i), lines, filename)
