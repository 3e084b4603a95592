"""Words grouped into caption lines (segments), and those lines as WebVTT and SubRip files.

A segment ends at a pause, or before it grows too long to read at once: at most two lines of 42
characters (the usual subtitle limit) and 6 seconds on screen.
"""

from __future__ import annotations

from pipelines.media.models import TranscriptLine
from pipelines.media.transcription.models import Segment, Word

# A pause this long ends a segment.
PAUSE_SECONDS = 0.7
MAX_SEGMENT_SECONDS = 6.0
MAX_SEGMENT_CHARS = 84
# A highlight carries at most this many lines of this many characters: the job document holds
# up to 50 highlights, and a minute of fast talk is about 30 lines.
MAX_HIGHLIGHT_LINES = 12
MAX_LINE_CHARS = 120


def group_segments(words: list[Word]) -> list[Segment]:
    """Consecutive words as caption lines, in order."""
    groups: list[list[Word]] = []
    for word in words:
        current = groups[-1] if groups else None
        if current is None or not _fits(current, word):
            groups.append([word])
        else:
            current.append(word)
    return [
        Segment(
            start=group[0].start,
            end=group[-1].end,
            text=" ".join(w.text for w in group),
            words=group,
        )
        for group in groups
    ]


def lines_between(segments: list[Segment], start: float, end: float) -> list[TranscriptLine]:
    """The caption lines said (even partly) between `start` and `end`, whole, as the captions
    show them: at most MAX_HIGHLIGHT_LINES, each cut to MAX_LINE_CHARS."""
    within = [s for s in segments if s.end > start and s.start < end]
    return [
        TranscriptLine(start=s.start, end=s.end, text=_shortened(s.text))
        for s in within[:MAX_HIGHLIGHT_LINES]
    ]


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


def _fits(group: list[Word], word: Word) -> bool:
    chars = sum(len(w.text) + 1 for w in group) + len(word.text)
    return (
        word.start - group[-1].end < PAUSE_SECONDS
        and word.end - group[0].start <= MAX_SEGMENT_SECONDS
        and chars <= MAX_SEGMENT_CHARS
    )


def webvtt(segments: list[Segment]) -> str:
    """The segments as a WebVTT file (for a browser's <track>)."""
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n" for s in segments]
    return "\n".join(["WEBVTT\n", *cues])


def subrip(segments: list[Segment]) -> str:
    """The segments as a SubRip (.srt) file (for video players and editors)."""
    cues = [
        f"{n}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n"
        for n, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def _clock(seconds: float, decimal: str) -> str:
    """HH:MM:SS.mmm (SubRip writes a comma before the milliseconds)."""
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"
