"""One SQL for both engines: SQLite's spelling of a statement in PostgreSQL's, and the rows
and parameters as the stores expect them (message_queue/pg.py runs them).

The stores write SQLite's SQL; the few words PostgreSQL spells its own way are rewritten here
once per statement: `?` and `:name` parameters, `json_each`, the two-argument `max`/`min`,
`CAST(... AS INTEGER)` (PostgreSQL rounds, SQLite truncates), case-insensitive `LIKE`, and
the `INDEXED BY` hint. By pattern, not by parsing: a new statement with one of these words
inside a string literal, or a nested `max(a, min(b, c))`, needs a look.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TOKENS = re.compile(r"'(?:[^']|'')*'|(?<!:):(\w+)|\?|%")  # not a ::cast
_REWRITES = (
    (re.compile(r"json_each\(\?\)"), "json_array_elements_text(CAST(? AS json))"),
    (re.compile(r"\b(max|min)\(([^(),]+),([^(),]+)\)"), None),
    (re.compile(r"CAST\(([^()]*) AS INTEGER\)"), r"CAST(floor(\1) AS BIGINT)"),
    (re.compile(r"\bLIKE\b"), "ILIKE"),
    (re.compile(r"\s+INDEXED BY \w+"), ""),
)


def _scalar(match: re.Match) -> str:
    return f"{'GREATEST' if match[1] == 'max' else 'LEAST'}({match[2]},{match[3]})"


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's spelling of `sql` in PostgreSQL's (psycopg's `%s` / `%(name)s` parameters)."""

    def token(match: re.Match) -> str:
        text = match[0]
        if text.startswith("'"):
            return text.replace("%", "%%")  # psycopg reads % even inside a literal
        if match[1]:
            return f"%({match[1]})s"
        return "%s" if text == "?" else "%%"

    for pattern, replacement in _REWRITES:
        sql = pattern.sub(_scalar if replacement is None else replacement, sql)
    return _TOKENS.sub(token, sql)


class Row:
    """A result row read by position or by column name, like sqlite3.Row."""

    __slots__ = ("_values", "_index")

    def __init__(self, values, index: dict[str, int]):
        self._values, self._index = values, index

    def __getitem__(self, key):
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def row_factory(cursor):
    # The names straight from the result: `cursor.description` builds a Column object, type
    # lookup and all, for every column of every statement (3-8 % of a claim + mark's CPU).
    result = cursor.pgresult
    names = tuple(result.fname(i) for i in range(result.nfields)) if result else ()
    index = _index(names)
    return lambda values: Row(values, index)


@lru_cache(maxsize=1024)
def _index(names: tuple) -> dict[str, int]:
    return {name.decode(): i for i, name in enumerate(names)}


def no_nul(params):
    """`params` with NUL characters replaced by U+FFFD: PostgreSQL refuses NUL in text, where
    SQLite keeps it, and text from outside (a reply, a phone's error) may hold one. The API
    refuses NUL in its own input; whatever else comes is kept, marked, never a crash."""
    values = params.values() if isinstance(params, dict) else params
    if not any(isinstance(v, str) and "\x00" in v for v in values):
        return params
    if isinstance(params, dict):
        return {k: _nul_free(v) for k, v in params.items()}
    return tuple(_nul_free(v) for v in params)


def _nul_free(value):
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value
