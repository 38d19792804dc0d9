"""Message templates: ``{column}`` placeholders filled per recipient, ``{a|b}`` choices.

A small scanner instead of ``str.format``: format would evaluate ``{0.__class__}`` style
attribute and index lookups, and it raises on a lone brace that a user typed by accident.
Here a placeholder is only ever a name looked up in a dict.

The syntax: a ``{…}`` holding a ``|`` at its own level is a choice (alternatives may be empty,
choices nest, placeholders may sit inside); without one it is a placeholder, one line of
anything but braces. ``{{`` and ``}}`` are literal braces outside choices (inside one every
brace opens or closes a group; and ``{{a|b}|c}`` is a choice, the only thing it can mean).
Any other brace is kept as typed, as is a group that is neither, e.g. ``{}``. What a message
with choices can become is `utils.spintax`.
"""

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from . import spintax
from .spintax import Choice, Part, Parts, Picks, Placeholder

_BRACE = re.compile(r"[{}]")
# A placeholder is one line of anything but braces.
_PLACEHOLDER = re.compile(r"\{([^{}\r\n]*)\}")
_WHITESPACE = re.compile(r"\s+")
# Choices nest this deep at most (a deeper group is no choice; the ones inside it still are),
# so every walk of the tree stays shallow whatever a 64 KB message holds.
MAX_NESTING = 20


class TemplateError(ValueError):
    """A template names a variable that the recipient does not have."""

    def __init__(self, name: str):
        super().__init__(f"the message uses {{{name}}} but there is no column named {name!r}")
        self.name = name


def normalize_name(text: str) -> str:
    """Turn a header or placeholder text into a variable name: "First Name" -> "first_name"."""
    return _WHITESPACE.sub("_", text.strip().lower())


def placeholders(template: str) -> list[str]:
    """Names of the placeholders in ``template``, normalised, in order of first appearance
    (those inside a choice's alternatives too: every one must name a column)."""
    names: dict[str, None] = {}  # a dict keeps first-seen order without duplicates
    spintax.names(_parse(template), names)
    return list(names)


def render(template: str, variables: dict[str, str], rng: Picks | None = None) -> str:
    """Fill every placeholder from ``variables`` and pick one alternative of each choice
    (from `rng`, else as `Compiled.fill` does); a missing variable raises TemplateError."""
    return compile_template(template).fill(variables, rng)


@dataclass(frozen=True)
class Compiled:
    """A template scanned once, to measure and fill it for each of many recipients.

    `counts` says how often each placeholder occurs, so the length of a rendered text is
    known from the variables' lengths before anything is built (a long cell times many
    placeholders must be refused, not rendered). With choices, `literal_length` and `counts`
    are the most any one text can have, so `length` is a bound that holds whatever is picked.
    `occurrences` counts placeholders and choices written anywhere in the template: each may
    be filled or picked on every row. `variants` is `spintax.variants`: 1 without choices.
    """

    literal_length: int
    counts: dict[str, int]
    occurrences: int
    _format: str  # the template as a %-format string, one %s per placeholder
    # itemgetter over the placeholders in order, or None when there are none
    _values: Callable[[dict], Any] | None
    variants: int = 1
    _parts: Parts | None = None  # the scanned template when it has choices, else None
    _key: bytes = b""  # the template hashed: the key of each recipient's picks

    def length(self, variables: dict[str, str]) -> int:
        """The length `fill(variables)` would have (with choices, the most it can have);
        a missing variable raises TemplateError."""
        try:
            return self.literal_length + sum(
                n * len(variables[name]) for name, n in self.counts.items()
            )
        except KeyError as exc:
            raise TemplateError(exc.args[0]) from None

    def fill(self, variables: dict[str, str], rng: Picks | None = None) -> str:
        """The text for one recipient, built in C (one %-format) when there are no choices.

        Each choice takes the alternative `rng.randrange` picks; by default the picks are a
        hash of the template and `variables` (see `utils.spintax`), so a recipient gets the
        same text each time the same request is read. A missing variable raises TemplateError,
        even one only an alternative not picked uses.
        """
        if self._parts is not None:
            self._check(variables)
            picks = rng if rng is not None else spintax.seeded_picks(self._key, variables)
            return spintax.fill(self._parts, variables, picks)
        if self._values is None:
            return self._format
        try:
            values = self._values(variables)
        except KeyError as exc:
            raise TemplateError(exc.args[0]) from None
        return self._format % (values if self.occurrences > 1 else (values,))

    def examples(self, variables: dict[str, str], limit: int = 3) -> list[str]:
        """Up to `limit` different texts the choices give one recipient (one without choices)."""
        if self._parts is None:
            return [self.fill(variables)]
        self._check(variables)
        return spintax.examples(self._parts, variables, limit)

    def _check(self, variables: Mapping[str, str]) -> None:
        missing = next((name for name in self.counts if name not in variables), None)
        if missing is not None:
            raise TemplateError(missing)


@lru_cache(maxsize=32)
def compile_template(template: str) -> Compiled:
    """The template scanned into a Compiled, kept: a job fills one for every recipient."""
    parts = _parse(template)
    if spintax.has_choices(parts):
        literal_length, counts = spintax.longest(parts)
        key = hashlib.blake2b(template.encode("utf-8", "surrogatepass"), digest_size=32).digest()
        occurrences = spintax.count_groups(parts)
        return Compiled(
            literal_length, counts, occurrences, "", None, spintax.variants(parts), parts, key
        )
    texts = [part for part in parts if isinstance(part, str)]
    names = [part.name for part in parts if isinstance(part, Placeholder)]
    if not names:
        text = "".join(texts)
        return Compiled(len(text), {}, 0, text, None)
    form = "".join(part.replace("%", "%%") if isinstance(part, str) else "%s" for part in parts)
    length = sum(len(text) for text in texts)
    return Compiled(length, dict(Counter(names)), len(names), form, itemgetter(*names))


@lru_cache(maxsize=32)
def _parse(template: str) -> Parts:
    """The scanned template, kept: a job renders one template for every recipient."""
    return _Scanner(template).parts()


class _Scanner:
    """One pass pairs every brace; each group is then read once, so a 64 KB message of
    braces costs linear time whatever it holds."""

    def __init__(self, template: str):
        self.text = template
        self.braces = [m.start() for m in _BRACE.finditer(template)]
        self.close: dict[int, int] = {}  # an opening brace's closing one, when it has one
        self.height: dict[int, int] = {}  # how deep the groups inside an opening brace go
        self.index: dict[int, int] = {}  # a brace's place in self.braces
        self.groups: dict[int, Choice | None] = {}  # each group read once: a choice or not
        open_: list[list[int]] = []  # [position, height so far] of the groups still open
        for i, pos in enumerate(self.braces):
            self.index[pos] = i
            if template[pos] == "{":
                open_.append([pos, 0])
            elif open_:
                start, inner = open_.pop()
                self.close[start], self.height[start] = pos, inner + 1
                if open_:
                    open_[-1][1] = max(open_[-1][1], inner + 1)

    def parts(self) -> Parts:
        """The template outside choices: ``{{`` and ``}}`` are literal braces there, except
        where the ``{{`` opens a choice whose first alternative opens with a choice."""
        text, out = self.text, _Parts()
        pos = 0  # where the text not yet added starts
        for brace in self.braces:
            if brace < pos:
                continue  # inside a group already read
            out.add(text[pos:brace])
            pair = text[brace : brace + 2]
            part: Part | None = None
            if pair == "{{":
                # "{{Hi|Hello}|Hey}" can only mean the choice: the literal reading would
                # leave "Hi|Hello}|Hey}", and a group without a "|" of its own stays text.
                part = self._choice(brace)
            elif pair[0] == "{":
                part = self._group(brace)
            if part is not None:
                out.add(part)
                pos = self.close[brace] + 1
            elif pair in ("{{", "}}"):
                out.add(pair[0])
                pos = brace + 2
            else:
                out.add(pair[0])  # a lone brace, kept as typed
                pos = brace + 1
        out.add(text[pos:])
        return out.done()

    def _group(self, start: int) -> Part | None:
        """The group opening at `start`: a Choice, a Placeholder, text kept as typed ("{}"),
        or None when it is none of them (its "{" is then literal)."""
        choice = self._choice(start)
        if choice is not None:
            return choice
        match = _PLACEHOLDER.match(self.text, start)
        if match is None:
            return None
        name = normalize_name(match.group(1))
        return Placeholder(name) if name else match.group(0)  # "{}", "{ }": nothing to look up

    def _choice(self, start: int) -> Choice | None:
        if start not in self.groups:
            end = self.close.get(start)
            ok = end is not None and self.height[start] <= MAX_NESTING
            self.groups[start] = self._alternatives(start, end) if end is not None and ok else None
        return self.groups[start]

    def _alternatives(self, start: int, end: int) -> Choice | None:
        """The group text[start..end] as a Choice, or None without a "|" at its own level or
        with a group inside that is neither a choice nor a placeholder."""
        text, alternatives = self.text, [_Parts()]
        pos, i = start + 1, self.index[start] + 1
        while True:
            brace = self.braces[i]  # the group's own level: the next brace opens, or is `end`
            pieces = text[pos:brace].split("|")
            alternatives[-1].add(pieces[0])
            for piece in pieces[1:]:
                alternatives.append(_Parts())
                alternatives[-1].add(piece)
            if brace == end:
                break
            part = self._group(brace)
            if part is None:
                return None
            alternatives[-1].add(part)
            pos = self.close[brace] + 1
            i = self.index[self.close[brace]] + 1
        if len(alternatives) == 1:
            return None
        return Choice(tuple(alternative.done() for alternative in alternatives))


class _Parts:
    """A sequence being scanned: adjacent texts are joined once, at the end."""

    def __init__(self):
        self.parts: list[Part] = []
        self.texts: list[str] = []

    def add(self, part: Part) -> None:
        if isinstance(part, str):
            if part:
                self.texts.append(part)
            return
        self._flush()
        self.parts.append(part)

    def done(self) -> Parts:
        self._flush()
        return tuple(self.parts)

    def _flush(self) -> None:
        if self.texts:
            self.parts.append("".join(self.texts))
            self.texts = []
