"""The spans' words joined into the recording's, each word once.

Every item hears its span plus an overlap on each side, so a word on a boundary is heard whole by
both neighbours, and each neighbour hears some context past the boundary. At each boundary the
join picks one cut time near it, where neither neighbour heard a word (a pause, or at worst the
edge between two words), keeps the left neighbour's words before the cut and the right one's
after it, and, should both still hold the same word on either side of the cut (their times
differ by a frame or two), keeps it once. A failed span (None) is a gap: its neighbours keep
their own spans' words, and nothing is made up for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from pipelines.media.models import Span
from pipelines.media.spans import find_gaps
from pipelines.media.transcription.models import TranscriptSpan, Word

# A cut is looked for at most this far either side of a boundary, and never beyond half the
# overlap each neighbour heard: each then heard at least as much sound past the cut as it may
# lie from the boundary, and its words there are settled.
SEARCH_SECONDS = 2.5
# A word "contains" a time only if the time is this far inside it: word edges abut, and two
# decodes of one word place its edges a frame or two apart.
EDGE_SLACK_SECONDS = 0.03
# Two words overlapping by more than this share of the shorter one are the same word heard twice.
SAME_WORD_OVERLAP = 0.5


def join_spans(
    parts: Sequence[TranscriptSpan | None], duration_seconds: float
) -> tuple[list[Word], list[Span]]:
    """All the words of the recording in order, each once; and the gaps the failed spans left."""
    gaps = find_gaps([part.span if part else None for part in parts], duration_seconds)
    present = [part for part in parts if part is not None]
    # Each span keeps the words whose middle lies between its cuts. Next to a gap there is no
    # cut: a span keeps its own span's words, and nobody's overlap reaches into the gap.
    lows = [present[0].span.start] if present else []
    highs = []
    for left, right in pairwise(present):
        cut = _cut(left, right) if left.span.end == right.span.start else None
        highs.append(left.span.end if cut is None else cut)
        lows.append(right.span.start if cut is None else cut)
    highs += [present[-1].span.end] if present else []
    words: list[Word] = []
    for part, low, high in zip(present, lows, highs, strict=True):
        _append(words, [w for w in part.words if low <= w.middle < high])
    return words, gaps


def _cut(left: TranscriptSpan, right: TranscriptSpan) -> float:
    """Where to split two neighbours' words: the time near their boundary that the fewest words
    of either cross; of those, the one farthest from any word, then the nearest the boundary."""
    boundary = left.span.end
    reach = min(SEARCH_SECONDS, (left.heard.end - boundary) / 2, (boundary - right.heard.start) / 2)
    window = (boundary - max(0.0, reach), boundary + max(0.0, reach))
    heard = [w for w in (*left.words, *right.words) if w.end > window[0] and w.start < window[1]]
    edges = sorted(
        {boundary, *(t for w in heard for t in (w.start, w.end) if window[0] <= t <= window[1])}
    )
    # Word edges, and the middle between each two of them (the middle of a pause).
    candidates = edges + [(a + b) / 2 for a, b in pairwise(edges)]

    def cost(time: float) -> tuple[int, float, float]:
        crossing = sum(
            w.start + EDGE_SLACK_SECONDS < time < w.end - EDGE_SLACK_SECONDS for w in heard
        )
        return crossing, -_clearance(time, heard), abs(time - boundary)

    return min(candidates, key=cost)


def _clearance(time: float, words: list[Word]) -> float:
    """How far `time` is from the nearest word (0 inside one): cuts in long pauses win."""
    distances = [max(w.start - time, time - w.end, 0.0) for w in words]
    return min(distances, default=SEARCH_SECONDS)


def _append(words: list[Word], more: list[Word]) -> list[Word]:
    """Add `more` to `words`, dropping the seam's second hearing of one word."""
    if words and more and _same_word(words[-1], more[0]):
        if words[-1].confidence >= more[0].confidence:
            more = more[1:]
        else:
            words.pop()
    words.extend(more)
    return words


def _same_word(a: Word, b: Word) -> bool:
    overlap = min(a.end, b.end) - max(a.start, b.start)
    shorter = min(a.end - a.start, b.end - b.start)
    return shorter > 0 and overlap > SAME_WORD_OVERLAP * shorter
