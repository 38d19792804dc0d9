"""Spintax: what a message with choices like ``{Hi|Hello}`` can become.

`utils.template` scans a message into parts: literal text, `Placeholder`s and `Choice`s (each
alternative itself a tuple of parts). This module does the arithmetic on that tree without
ever listing the texts (ten choices of two are already 1,024 texts), and picks one text.

Picks come from anything with ``randrange(n)``. By default a recipient's picks are a hash of
the template and their variables (`SeededPicks`): the same request renders the same texts, so
/preview shows what /send queues and a replayed Idempotency-Key matches its first request
(its hash covers every rendered text), while different recipients get independent picks.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import NamedTuple, Protocol, TypeAlias

# `variants` stops counting here: "this many or more". Counting stays arithmetic either way.
MAX_VARIANTS = 1_000_000_000
_EXAMPLE_TRIES = 20  # random picks tried for examples after the ordered ones


class Placeholder(NamedTuple):
    name: str  # normalised: a key of the recipient's variables


class Choice(NamedTuple):
    alternatives: tuple[Parts, ...]


Part: TypeAlias = str | Placeholder | Choice
Parts: TypeAlias = tuple[Part, ...]


class Picks(Protocol):
    """Where picks come from: `SeededPicks`, ``random.Random()``, or a test's stand-in."""

    def randrange(self, n: int, /) -> int: ...


class SeededPicks:
    """``randrange`` from a keyed hash of a seed: the same key and seed give the same picks."""

    def __init__(self, key: bytes, seed: bytes):
        self._key, self._seed, self._block = key, seed, 0
        self._value = self._range = 0

    def randrange(self, n: int, /) -> int:
        # Mixed radix over 512 hashed bits; a fresh block before the bias could reach 2**-64.
        if self._range < n << 64:
            salt = self._block.to_bytes(16, "little")
            digest = hashlib.blake2b(self._seed, key=self._key, salt=salt).digest()
            self._value, self._range = int.from_bytes(digest), 1 << 512
            self._block += 1
        self._value, pick = divmod(self._value, n)
        self._range //= n
        return pick


def seeded_picks(key: bytes, variables: Mapping[str, object]) -> SeededPicks:
    """The default picks for one recipient of the template hashed into `key`."""
    seed = "\0".join(f"{name}\1{value}" for name, value in sorted(variables.items()))
    return SeededPicks(key, seed.encode("utf-8", "surrogatepass"))


def has_choices(parts: Parts) -> bool:
    return any(isinstance(part, Choice) for part in parts)


def variants(parts: Parts) -> int:
    """How many texts the choices allow: a product along a sequence, a sum over the
    alternatives of one choice; capped at MAX_VARIANTS (meaning that many or more)."""
    total = 1
    for part in parts:
        if isinstance(part, Choice):
            total = min(total * _alternatives(part), MAX_VARIANTS)
    return total


def _alternatives(choice: Choice) -> int:
    return min(sum(variants(alternative) for alternative in choice.alternatives), MAX_VARIANTS)


def longest(parts: Parts) -> tuple[int, dict[str, int]]:
    """The most literal characters and the most uses of each placeholder in any one text.

    Their sum over a recipient's values bounds that recipient's text whatever is picked,
    so an over-long text is refused before it is built, as without choices.
    """
    literal = 0
    counts: dict[str, int] = {}
    for part in parts:
        if isinstance(part, str):
            literal += len(part)
        elif isinstance(part, Placeholder):
            counts[part.name] = counts.get(part.name, 0) + 1
        else:
            longest_literal = 0
            most: dict[str, int] = {}
            for alternative in part.alternatives:
                n, uses = longest(alternative)
                longest_literal = max(longest_literal, n)
                for name, count in uses.items():
                    most[name] = max(most.get(name, 0), count)
            literal += longest_literal
            for name, count in most.items():
                counts[name] = counts.get(name, 0) + count
    return literal, counts


def names(parts: Parts, into: dict[str, None]) -> None:
    """Add every placeholder's name to `into`, in order, inside every alternative too."""
    for part in parts:
        if isinstance(part, Placeholder):
            into.setdefault(part.name, None)
        elif isinstance(part, Choice):
            for alternative in part.alternatives:
                names(alternative, into)


def count_groups(parts: Parts) -> int:
    """Placeholders and choices written anywhere: each may be filled or picked on every row."""
    total = 0
    for part in parts:
        if isinstance(part, Placeholder):
            total += 1
        elif isinstance(part, Choice):
            total += 1 + sum(count_groups(alternative) for alternative in part.alternatives)
    return total


def fill(parts: Parts, variables: Mapping[str, object], picks: Picks) -> str:
    """One text: an alternative picked for each choice met; a missing variable is a KeyError."""
    out: list[str] = []
    _fill(parts, variables, picks, out)
    return "".join(out)


def _fill(parts: Parts, variables: Mapping[str, object], picks: Picks, out: list[str]) -> None:
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Placeholder):
            out.append(str(variables[part.name]))
        else:
            alternatives = part.alternatives
            _fill(alternatives[picks.randrange(len(alternatives))], variables, picks, out)


class _Column:
    """Picks that take alternative `i` (wrapping) of every choice: the ordered examples."""

    def __init__(self, i: int):
        self.i = i

    def randrange(self, n: int, /) -> int:
        return self.i % n


def examples(parts: Parts, variables: Mapping[str, object], limit: int = 3) -> list[str]:
    """Up to `limit` different texts for one recipient: every choice's first alternative, its
    second, its third..., then a few random picks while fewer than `limit` differ."""
    limit = min(limit, variants(parts))  # e.g. {a|b}: no random tries once both are seen
    seen: dict[str, None] = {}
    widest = max((len(p.alternatives) for p in _choices(parts)), default=1)
    tries: list[Picks] = [_Column(i) for i in range(min(widest, limit))]
    rng = random.Random(0)  # fixed: the same preview twice shows the same examples
    tries += [rng] * _EXAMPLE_TRIES
    for picks in tries:
        if len(seen) == limit:
            break
        seen.setdefault(fill(parts, variables, picks), None)
    return list(seen)


def _choices(parts: Parts):
    for part in parts:
        if isinstance(part, Choice):
            yield part
            for alternative in part.alternatives:
                yield from _choices(alternative)
