"""Message templates: ``{column}`` placeholders filled per recipient.

A small scanner instead of ``str.format``: format would evaluate ``{0.__class__}`` style
attribute and index lookups, and it raises on a lone brace that a user typed by accident.
Here a placeholder is only ever a name looked up in a dict.
"""

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

# "{{" and "}}" come first so that they win over a placeholder starting at the same place;
# a placeholder is one line of anything but braces.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\r\n]*)\}")
_WHITESPACE = re.compile(r"\s+")


class TemplateError(ValueError):
    """A template names a variable that the recipient does not have."""

    def __init__(self, name: str):
        super().__init__(f"the message uses {{{name}}} but there is no column named {name!r}")
        self.name = name


def normalize_name(text: str) -> str:
    """Turn a header or placeholder text into a variable name: "First Name" -> "first_name"."""
    return _WHITESPACE.sub("_", text.strip().lower())


def placeholders(template: str) -> list[str]:
    """Names of the placeholders in ``template``, normalised, in order of first appearance."""
    names: dict[str, None] = {}  # a dict keeps first-seen order without duplicates
    for _, name in _scan(template):
        if name is not None:
            names.setdefault(name, None)
    return list(names)


def render(template: str, variables: dict[str, str]) -> str:
    """Fill every placeholder from ``variables``; a missing one raises TemplateError."""
    parts = []
    for literal, name in _tokens(template):
        if name is None:
            parts.append(literal)
        elif name in variables:
            parts.append(str(variables[name]))
        else:
            raise TemplateError(name)
    return "".join(parts)


@dataclass(frozen=True)
class Compiled:
    """A template scanned once, to measure and fill it for each of many recipients.

    `counts` says how often each placeholder occurs, so the length of a rendered text is
    known from the variables' lengths before anything is built (a long cell times many
    placeholders must be refused, not rendered).
    """

    literal_length: int
    counts: dict[str, int]
    occurrences: int
    _format: str  # the template as a %-format string, one %s per placeholder
    # itemgetter over the placeholders in order, or None when there are none
    _values: Callable[[dict], Any] | None

    def length(self, variables: dict[str, str]) -> int:
        """The length `fill(variables)` would have; a missing variable raises TemplateError."""
        try:
            return self.literal_length + sum(
                n * len(variables[name]) for name, n in self.counts.items()
            )
        except KeyError as exc:
            raise TemplateError(exc.args[0]) from None

    def fill(self, variables: dict[str, str]) -> str:
        """The text for one recipient, built in C (one %-format), whatever the placeholders."""
        if self._values is None:
            return self._format
        try:
            values = self._values(variables)
        except KeyError as exc:
            raise TemplateError(exc.args[0]) from None
        return self._format % (values if self.occurrences > 1 else (values,))


@lru_cache(maxsize=32)
def compile_template(template: str) -> Compiled:
    """The template scanned into a Compiled, kept: a job fills one for every recipient."""
    literal: list[str] = []
    names: list[str] = []
    for text, name in _tokens(template):
        if name is None:
            literal.append(text.replace("%", "%%"))
        else:
            literal.append("%s")
            names.append(name)
    if not names:
        return Compiled(len(render(template, {})), {}, 0, render(template, {}), None)
    length = sum(len(text) for text, name in _tokens(template) if name is None)
    return Compiled(length, dict(Counter(names)), len(names), "".join(literal), itemgetter(*names))


@lru_cache(maxsize=32)
def _tokens(template: str) -> tuple:
    """The scanned template, kept: a job renders one template for every recipient."""
    return tuple(_scan(template))


def _scan(template: str):
    """Yield (literal, None) for text and (raw, name) for each placeholder, in order."""
    pos = 0
    for match in _TOKEN.finditer(template):
        if match.start() > pos:
            yield template[pos : match.start()], None
        token = match.group(0)
        name = normalize_name(match.group(1)) if match.group(1) is not None else ""
        if token in ("{{", "}}"):
            yield token[0], None
        elif name:
            yield token, name
        else:
            yield token, None  # "{}" or "{  }": nothing to look up, keep it as typed
        pos = match.end()
    if pos < len(template):
        yield template[pos:], None
