"""Where the words or phrases a user cares about were said.

Matching ignores case and punctuation: a keyword and the transcript are both cut into tokens
(runs of letters, digits and apostrophes, case-folded), so "Cold-hearted" finds "cold hearted" as
PocketSphinx writes it and "cold-hearted," as a punctuating engine might. A phrase matches where
its tokens are said one after another.
"""

from __future__ import annotations

from pydantic import BaseModel

from pipelines.media.spec import tokens
from pipelines.media.transcription.models import Word


class KeywordHit(BaseModel):
    """A keyword (as the user wrote it) said from `start` to `end`."""

    keyword: str
    start: float
    end: float


def find_keywords(words: list[Word], keywords: list[str]) -> list[KeywordHit]:
    """Every place each keyword was said, in time order."""
    said = [(token, word) for word in words for token in tokens(word.text)]
    spoken = [token for token, _ in said]
    hits = []
    for keyword in keywords:
        wanted = tokens(keyword)
        if not wanted:
            continue
        for first in range(len(spoken) - len(wanted) + 1):
            if spoken[first : first + len(wanted)] == wanted:
                last = first + len(wanted) - 1
                hits.append(
                    KeywordHit(keyword=keyword, start=said[first][1].start, end=said[last][1].end)
                )
    return sorted(hits, key=lambda hit: hit.start)
