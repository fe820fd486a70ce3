"""What a person typed into the search box, read once: the text, its words and whether it looks
like a reference (INC0012345, CI-00042, PRB0001)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

MAX_LENGTH = 200  # characters; longer is an error naming the field, not a silent cut
MAX_WORDS = 8  # words beyond this are an error: every word is one more condition on every kind
MIN_LENGTH = 2

_WORD = re.compile(r"[^\s\"']+")


@dataclass(frozen=True)
class Query:
    text: str  # as typed, trimmed, inner whitespace collapsed
    words: tuple[str, ...]  # lower-cased, duplicates dropped, in the order typed

    @property
    def folded(self) -> str:
        return self.text.casefold()


def parse(raw: str | None, *, field: str = "q") -> Query:
    """The query, or a ValidationError naming `field` that says what to type instead."""
    text = " ".join((raw or "").split())
    if not text:
        raise ValidationError({field: "Type at least two characters to search for."})
    if len(text) > MAX_LENGTH:
        raise ValidationError({field: f"Search for at most {MAX_LENGTH} characters (this is {len(text)})."})
    if len(text) < MIN_LENGTH:
        raise ValidationError({field: "Type at least two characters to search for."})
    words: list[str] = []
    for word in _WORD.findall(text.casefold()):
        if word not in words:
            words.append(word)
    if not words:
        raise ValidationError({field: "Type a word or a reference to search for, not only quotes."})
    if len(words) > MAX_WORDS:
        raise ValidationError({field: f"Search for at most {MAX_WORDS} words (this has {len(words)})."})
    return Query(text=text, words=tuple(words))
