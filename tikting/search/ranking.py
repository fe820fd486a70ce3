"""How results from different kinds are ranked against each other, and the excerpt shown with
each: one scoring for every kind, so an item, an incident and a person compete on the same terms.

The score (docs/search.md) adds, for a query and one result:

- 1000 when the reference is the query (INC0012345, CI-00042, a person's user name);
- 400 when the reference starts with it;
- 300 when the title is the query, else 150 when the title holds the query as typed;
- 40 for each word found in the title (10 more where it starts a word there);
- 30 when the text holds the query as typed, and 5 for each word found in the text.

Ties go to the more recent result, then to the kind listed first (the register before records).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .query import Query

EXCERPT = 160  # characters of text around the first word found


@dataclass(frozen=True)
class Segment:
    """A piece of an excerpt or title; `hit` pieces are the query's words, shown marked."""

    text: str
    hit: bool


def _starts_word(haystack: str, word: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(word), haystack) is not None


def score(query: Query, *, ref: str, title: str, text: str) -> float:
    folded_ref, folded_title, folded_text = ref.casefold(), title.casefold(), text.casefold()
    phrase = query.folded
    total = 0.0
    if folded_ref and folded_ref == phrase:
        total += 1000
    elif folded_ref and folded_ref.startswith(phrase):
        total += 400
    if folded_title == phrase:
        total += 300
    elif phrase in folded_title:
        total += 150
    for word in query.words:
        if word in folded_title:
            total += 40 + (10 if _starts_word(folded_title, word) else 0)
        if word in folded_text:
            total += 5
    if len(query.words) > 1 and phrase in folded_text:
        total += 30
    elif len(query.words) == 1 and phrase in folded_text:
        total += 25  # a single word found in the text already earned its 5
    return total


def marked(text: str, words: tuple[str, ...]) -> list[Segment]:
    """`text` cut into pieces, the query's words marked (case kept as written)."""
    if not text or not words:
        return [Segment(text, False)] if text else []
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
    pieces: list[Segment] = []
    at = 0
    for match in pattern.finditer(text):
        if match.start() > at:
            pieces.append(Segment(text[at : match.start()], False))
        pieces.append(Segment(match.group(0), True))
        at = match.end()
    if at < len(text):
        pieces.append(Segment(text[at:], False))
    return pieces


def excerpt(text: str, words: tuple[str, ...], *, width: int = EXCERPT) -> list[Segment]:
    """About `width` characters of `text` around the first word found (its start when none is),
    on one line, with "…" where it was cut, the words marked."""
    flat = " ".join(text.split())
    if not flat:
        return []
    folded = flat.casefold()
    first = min((i for i in (folded.find(w) for w in words) if i >= 0), default=0)
    start = max(0, first - width // 3)
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = min(len(flat), start + width)
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > first else end
    piece = ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
    return marked(piece, words)
