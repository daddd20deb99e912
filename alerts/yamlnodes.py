"""Reading YAML with line numbers: a thin layer over ``yaml.compose`` nodes.

Every problem is appended to a shared list of :class:`ioccore.errors.RuleError` (file and
1-based line) instead of stopping at the first one, so a check reports all of them.
"""

from __future__ import annotations

from datetime import timedelta

import yaml

from alerts.durations import parse_duration
from ioccore.errors import RuleError


class Reader:
    """Collects errors for one file while typed values are read from nodes."""

    def __init__(self, file: str, errors: list[RuleError]) -> None:
        self.file = file
        self.errors = errors

    def error(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.errors.append(RuleError(self.file, line, message))

    def compose(self, text: str) -> yaml.Node | None:
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            self.errors.append(RuleError(self.file, line, f"YAML: {exc.problem or exc}"))
        except yaml.YAMLError as exc:
            self.errors.append(RuleError(self.file, None, f"YAML: {exc}"))
        return None

    def mapping(
        self, node: yaml.Node, where: str, allowed: set[str] | None = None
    ) -> dict[str, yaml.Node] | None:
        """A mapping's values by key; unknown keys (when ``allowed`` is given) are errors."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{where}: expected a mapping")
            return None
        out: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                self.error(key, f"{where}: keys must be strings")
                continue
            if key.value in out:
                self.error(key, f"{where}: duplicate key {key.value!r}")
                continue
            if allowed is not None and key.value not in allowed:
                self.error(key, f"{where}: unknown key {key.value!r} "
                                f"(allowed: {', '.join(sorted(allowed))})")
                continue
            out[key.value] = value
        return out

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{where}: expected a list")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node, where: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{where}: expected a single value")
            return None
        value: str = node.value
        return value

    def string(self, node: yaml.Node, where: str, *, nonempty: bool = True) -> str | None:
        value = self.scalar(node, where)
        if value is not None and nonempty and not value.strip():
            self.error(node, f"{where}: must not be empty")
            return None
        return value

    def number(self, node: yaml.Node, where: str) -> float | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            self.error(node, f"{where}: expected a number, got {value!r}")
            return None

    def integer(self, node: yaml.Node, where: str, minimum: int = 0) -> int | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            self.error(node, f"{where}: expected an integer, got {value!r}")
            return None
        if number < minimum:
            self.error(node, f"{where}: must be at least {minimum}")
            return None
        return number

    def boolean(self, node: yaml.Node, where: str) -> bool | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        if value.lower() in ("true", "yes", "on"):
            return True
        if value.lower() in ("false", "no", "off"):
            return False
        self.error(node, f"{where}: expected true or false")
        return None

    def duration(self, node: yaml.Node, where: str, *, positive: bool = False) -> timedelta | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            self.error(node, f"{where}: {exc}")
            return None
        if positive and parsed <= timedelta(0):
            self.error(node, f"{where}: must be greater than 0")
            return None
        return parsed

    def choice(self, node: yaml.Node, where: str, choices: tuple[str, ...]) -> str | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        if value not in choices:
            self.error(node, f"{where}: {value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def string_map(self, node: yaml.Node, where: str) -> dict[str, str] | None:
        items = self.mapping(node, where)
        if items is None:
            return None
        out: dict[str, str] = {}
        for key, value in items.items():
            text = self.scalar(value, f"{where}.{key}")
            if text is not None:
                out[key] = text
        return out
