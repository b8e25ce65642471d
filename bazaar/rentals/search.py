"""Catalogue search helpers: one accent and case fold, and the SQLite ranking that uses it.

PostgreSQL folds with ``unaccent(lower(...))`` and ranks with ``pg_trgm`` (selectors.title_search); this module's
``fold`` matches what ``unaccent`` does for the letters a catalogue meets, so the query is folded the same way on
both databases. SQLite has neither extension: ``rank`` folds each title in Python and scores it per query word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from difflib import SequenceMatcher

#: How many SQLite matches a search returns at most (the embedded database holds a demo-sized catalogue).
MAX_RESULTS = 400
#: pg_trgm word similarity at or above which a title or author counts as a match (a one-letter typo in a
#: five-letter word scores about 0.5).
TRIGRAM_THRESHOLD = 0.4
#: SQLite: a query word of at least 4 letters matches a title word this similar (one typo in 5 letters: 0.8).
WORD_THRESHOLD = 0.75

# Letters NFKD does not decompose but unaccent folds.
_EXTRA = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "ß": "ss", "æ": "ae", "œ": "oe"})


def fold(text: str) -> str:
    """Lowercase, accents removed, whitespace collapsed: "Ngũgĩ  wa Thiong'o" → "ngugi wa thiong'o"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_EXTRA))
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _word_score(word: str, words: list[str], hay: str) -> float:
    if word in hay:
        return 1.0
    if len(word) < 4:
        return 0.0
    best = max((SequenceMatcher(None, word, w).ratio() for w in words), default=0.0)
    return best if best >= WORD_THRESHOLD else 0.0


def rank(q: str, rows: Iterable[tuple[int, str, str]]) -> list[tuple[int, float]]:
    """(id, score) of the titles matching every word of ``q``, best first; ``rows`` are (id, title, author).

    A word matches when it occurs in the folded title or author, or (4 letters or more) when a word there is at
    least ``WORD_THRESHOLD`` similar. A match in the title scores above one in the author only.
    """
    words = fold(q).split()
    if not words:
        return []
    out: list[tuple[int, float]] = []
    for pk, title, author in rows:
        t, a = fold(title), fold(author)
        t_words, a_words = t.split(), a.split()
        total = 0.0
        for word in words:
            score = max(_word_score(word, t_words, t) * 1.2, _word_score(word, a_words, a))
            if not score:
                break
            total += score
        else:
            out.append((pk, total / len(words)))
    out.sort(key=lambda item: -item[1])
    return out
