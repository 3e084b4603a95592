"""A span's sound in pieces of about a minute, cut in the pauses between utterances, so that an
item can save its words after each piece and a later delivery go on after the last one saved.

The pieces cover the sound end to end (an engine still hears whatever the voice detector did not
mark), and each cut lies in the middle of a pause, so no word is split between two pieces. The
plan depends on the samples alone: a delivery that reads the same sound again cuts the same
pieces, so the words of a resumed span are those of an uninterrupted one.
"""

from __future__ import annotations

from itertools import pairwise

from pipelines.media.transcription.engine import Speech
from pipelines.media.transcription.utterances import find_utterances

# Without a pause, a piece is cut between two abutting utterances (at the quietest moment of a
# long one, where `find_utterances` split it) once it is this many times the target.
LONGEST_TARGETS = 2.0

Piece = tuple[int, int]


def group_pieces(utterances: list[Piece], total: int, target: int) -> list[Piece]:
    """[first, last) sample ranges covering [0, total): each closes at the first pause after
    its utterances reach `target` samples, cut in the middle of that pause."""
    longest = round(LONGEST_TARGETS * target)
    cuts: list[int] = []
    start = 0
    for (_first, last), (following, _end) in pairwise(utterances):
        length = last - start
        paused = following > last
        if (length >= target and paused) or length >= longest:
            cut = (last + following) // 2
            cuts.append(cut)
            start = cut
    edges = [0, *cuts, total]
    return list(pairwise(edges))


def split_speech(speech: Speech, target_seconds: float) -> list[Speech]:
    """`speech` in pieces of about `target_seconds`, cut in pauses (see `group_pieces`)."""
    rate = speech.sample_rate
    utterances = find_utterances(speech.samples, rate)
    ranges = group_pieces(utterances, len(speech.samples), round(target_seconds * rate))
    return [
        Speech(
            samples=speech.samples[first:last], sample_rate=rate, start=speech.start + first / rate
        )
        for first, last in ranges
    ]
