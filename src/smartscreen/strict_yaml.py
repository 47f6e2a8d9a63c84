"""YAML for the project's own files (line configuration, risk policies, model manifests, recipes, data.yaml,
class maps): PyYAML's safe loader, except that a key given twice in one mapping is an error.

Plain ``yaml.safe_load`` keeps the last of two equal keys without a word, so a policy or line configuration
edited by hand could silently lose a setting (two ``alarm_score:`` lines, a class listed twice). Here the
error names the key and both lines; it is a ``yaml.YAMLError``, so every caller's existing "not valid YAML"
handling reports it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys itself
            if key in first_line:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first given on line {first_line[key] + 1})",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse one YAML document like ``yaml.safe_load``, refusing duplicate keys (``yaml.YAMLError``)."""
    return yaml.load(text, Loader=UniqueKeyLoader)
