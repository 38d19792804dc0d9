"""Is a reply an opt-out or opt-in keyword? The one rule, for both channels' inbound code.

A reply counts only when the whole message is one keyword: "STOP", " Stop! " and "PARÁR"
do, "stop sending me these" does not (a person complaining mid-sentence has not asked to
be removed, and a sentence that merely contains "end" must not remove anyone).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
# A keyword is a word or two; a longer reply is never one, so it is not even normalised
# (a 1 MB text must not cost a 1 MB unicodedata pass per keyword list).
_MAX_REPLY_CHARS = 200


def fold(text: str) -> str:
    """`text` with case, accents, punctuation and spaces taken away: "Pará r!" -> "parar"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


@lru_cache(maxsize=8)
def _keywords(setting: str) -> frozenset[str]:
    """A comma-separated setting as folded keywords (blank entries dropped)."""
    return frozenset(k for k in (fold(part) for part in setting.split(",")) if k)


def keyword_kind(text: str, opt_out_keywords: str, opt_in_keywords: str) -> str | None:
    """ "opt_out" or "opt_in" when the whole of `text` is one such keyword, else None.

    Both settings are comma-separated (OPT_OUT_KEYWORDS, OPT_IN_KEYWORDS). A word in both
    lists counts as opt-out: when in doubt, do not message the person.
    """
    if not text or len(text) > _MAX_REPLY_CHARS:
        return None
    word = fold(text)
    if not word:
        return None
    if word in _keywords(opt_out_keywords):
        return OPT_OUT
    if word in _keywords(opt_in_keywords):
        return OPT_IN
    return None
