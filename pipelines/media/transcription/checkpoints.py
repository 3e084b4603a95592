"""What a transcription item saves after each piece of its span: how the span was cut, how many
pieces are done, and their words, so that a later delivery (after a crash, or once a delivery's
time budget ran out) goes on after the last piece saved.

The cursor lives in the item's run document, which Firestore caps at 1 MiB. Words are kept as
columns (a word costs its text plus three 8-byte numbers, about 30 bytes) rather than objects
(about 70). The densest speech, some 250 words a minute, gives about 1,300 words in a 5-minute
span and its overlaps: about 40 KB. Even a degenerate decode, a word in every 30 ms (PocketSphinx's
shortest: three 10 ms frames), stays near 320 KB (470 KB were every word 20 letters long). Past
MAX_BYTES a checkpoint is not saved: the last one saved is still a true prefix of the span's
words, so a resumed delivery merely redoes more. Nothing is compressed: there is no need.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError

from pipelines.media.transcription.models import Word

# Well below Firestore's 1 MiB document limit; the run document's other fields are small.
MAX_BYTES = 512 * 1024


class SpanCheckpoint(BaseModel):
    """The cursor of a transcription item: the pieces' lengths in samples (to be sure a resumed
    delivery cut the same pieces), how many are done, and their words, column by column."""

    plan: list[int]
    done: int = Field(ge=0)
    text: list[str] = Field(default_factory=list)
    start: list[float] = Field(default_factory=list)
    end: list[float] = Field(default_factory=list)
    confidence: list[float] = Field(default_factory=list)

    @classmethod
    def of(cls, plan: list[int], done: int, words: list[Word]) -> SpanCheckpoint:
        return cls(
            plan=plan,
            done=done,
            text=[w.text for w in words],
            start=[w.start for w in words],
            end=[w.end for w in words],
            confidence=[w.confidence for w in words],
        )

    def words(self) -> list[Word]:
        columns = zip(self.text, self.start, self.end, self.confidence, strict=True)
        return [Word(text=t, start=s, end=e, confidence=c) for t, s, e, c in columns]

    def stored_bytes(self) -> int:
        """The bytes Firestore counts for this cursor (strings: UTF-8 plus one; numbers: 8)."""
        names = sum(len(name) + 1 for name in type(self).model_fields)
        numbers = 8 * (len(self.plan) + 1 + len(self.start) + len(self.end) + len(self.confidence))
        return names + numbers + sum(len(t.encode()) + 1 for t in self.text)

    @property
    def fits(self) -> bool:
        return self.stored_bytes() <= MAX_BYTES


def resumed(cursor: object, plan: list[int]) -> SpanCheckpoint | None:
    """The checkpoint a delivery may go on from: one saved for the same pieces, else None."""
    if not isinstance(cursor, dict):
        return None
    try:
        saved = SpanCheckpoint.model_validate(cursor)
    except ValidationError:
        return None
    if saved.plan != plan or saved.done > len(plan):
        return None
    return saved
