"""What transcription produces: words with their times and confidence, the words of one span as an
item hands them to the reduce, and the whole recording's transcript grouped into segments (caption
lines). Times are seconds from the start of the recording, as everywhere in media-analysis."""

from __future__ import annotations

from pydantic import BaseModel, Field

from pipelines.media.models import Span


class Word(BaseModel):
    """One recognised word: where it starts and ends, and how sure the engine is of it (0..1)."""

    text: str = Field(min_length=1)
    start: float = Field(ge=0.0)
    end: float = Field(ge=0.0)
    confidence: float = Field(ge=0.0, le=1.0)

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


class TranscriptSpan(BaseModel):
    """The words an item heard: its `span` of the recording, and `heard`, the longer stretch it
    decoded (the span with an overlap on each side, so a word on a boundary is heard whole by
    both neighbours and the reduce keeps it once)."""

    span: Span
    heard: Span
    engine: str
    language: str
    words: list[Word]


class Segment(BaseModel):
    """A caption line: words close together in time, short enough to read at once."""

    start: float
    end: float
    text: str
    words: list[Word]


class WordTimes(BaseModel):
    """The transcript's words as later stages read them (the highlights): one column each of
    text, start and end, which Firestore and JSON hold in a third of the room of word objects."""

    text: list[str] = Field(default_factory=list)
    start: list[float] = Field(default_factory=list)
    end: list[float] = Field(default_factory=list)

    @classmethod
    def of(cls, words: list[Word]) -> WordTimes:
        return cls(
            text=[w.text for w in words],
            start=[w.start for w in words],
            end=[w.end for w in words],
        )

    def words(self) -> list[Word]:
        """The words again (their confidence is not kept: 1.0)."""
        return [
            Word(text=text, start=start, end=end, confidence=1.0)
            for text, start, end in zip(self.text, self.start, self.end, strict=True)
        ]


class Transcript(BaseModel):
    """The transcript of the whole recording, as `transcript.json` holds it."""

    engine: str
    language: str
    duration_seconds: float
    segments: list[Segment]
    gaps: list[Span] = Field(
        default_factory=list, description="Stretches whose words are missing: their span failed"
    )

    @property
    def word_count(self) -> int:
        return sum(len(segment.words) for segment in self.segments)

    @property
    def speech_seconds(self) -> float:
        """Seconds within segments: speech, with the short pauses inside sentences."""
        return sum(segment.end - segment.start for segment in self.segments)
