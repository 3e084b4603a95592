"""What the media analyses produce. Stage outputs are stored in Firestore, so every field is a
plain JSON type: numbers, strings, booleans, lists and nested models. Times are in seconds from
the start of the recording."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class StreamInfo(BaseModel):
    """One stream of a container, whatever its kind."""

    index: int
    kind: str = Field(description="audio, video, subtitle, data, attachment or unknown")
    codec: str
    duration_seconds: float | None = None


class AudioInfo(BaseModel):
    """The first audio stream, the one the analyses read."""

    codec: str
    sample_rate: int
    channels: int


class VideoInfo(BaseModel):
    """The first video stream, the one the analyses read."""

    codec: str
    width: int
    height: int
    fps: float


class MediaInfo(BaseModel):
    """What a media file holds, as far as the analyses care."""

    format_name: str
    duration_seconds: float
    has_audio: bool
    has_video: bool
    audio: AudioInfo | None = None
    video: VideoInfo | None = None
    streams: list[StreamInfo] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="What the probe left out, in plain words"
    )


class Span(BaseModel):
    """A stretch of the recording, `start` to `end`."""

    start: float = Field(ge=0.0)
    end: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Span:
        if self.end < self.start:
            raise ValueError("a span cannot end before it starts")
        return self


class Peak(BaseModel):
    """A loud burst: `time` is its onset, `dbfs` the loudest window within it."""

    time: float
    dbfs: float


class AudioAnalysis(BaseModel):
    """The loudness of the recording, window by window, and what stands out in it."""

    window_seconds: float
    duration_seconds: float
    loudness_dbfs: list[float] = Field(description="RMS level of each window, floored at -100")
    silences: list[Span] = Field(default_factory=list)
    peaks: list[Peak] = Field(default_factory=list)
    gaps: list[Span] = Field(
        default_factory=list,
        description="Stretches that could not be read; their windows hold -100 and count as "
        "neither silence nor burst",
    )
    undecodable: list[Span] = Field(
        default_factory=list, description="Damaged stretches skipped; no silence is found in one"
    )


class LoudnessSpan(BaseModel):
    """The loudness of one span: the windows of the recording-wide grid that start within it."""

    span: Span
    window_seconds: float
    first_window: int = Field(ge=0, description="index in the whole recording of the first level")
    loudness_dbfs: list[float]
    undecodable: list[Span] = Field(
        default_factory=list, description="Damaged stretches skipped within the span"
    )


class SceneAnalysis(BaseModel):
    """Where the picture changes abruptly, from frames sampled `sample_fps` times a second."""

    sample_fps: float
    cuts: list[float] = Field(default_factory=list)
    frames_examined: int
    gaps: list[Span] = Field(
        default_factory=list, description="Stretches that could not be read: no cut across them"
    )
    undecodable: list[Span] = Field(default_factory=list, description="Damaged stretches skipped")


class SceneSpan(BaseModel):
    """The scene samples of one span: those of the recording-wide sample grid within it, each
    with its difference from the sample before it (for the first, the last one before the span,
    at `previous_time`; None if there was none, when the first sample has no difference)."""

    span: Span
    sample_fps: float
    times: list[float]
    differences: list[float]
    previous_time: float | None = None
    undecodable: list[Span] = Field(
        default_factory=list, description="Damaged stretches skipped within the span"
    )

    @model_validator(mode="after")
    def _one_difference_per_comparison(self) -> SceneSpan:
        compared = len(self.times) - (self.previous_time is None and len(self.times) > 0)
        if len(self.differences) != compared:
            raise ValueError("there must be one difference per sample compared with another")
        return self


class ChatAnalysis(BaseModel):
    """How busy the chat was, window by window, and when it was far busier than usual."""

    messages: int
    bad_lines: int
    window_seconds: float
    rate_per_window: list[float] = Field(description="messages per second in each window")
    spikes: list[Span] = Field(default_factory=list)


class TranscriptLine(BaseModel):
    """A caption line of the transcript: what was said from `start` to `end`."""

    start: float
    end: float
    text: str


class Highlight(BaseModel):
    """A stretch worth watching, with a score in [0, 1], why it was picked, and what was said in
    it (a few caption lines, when the recording was transcribed)."""

    start: float
    end: float
    score: float
    reasons: list[str] = Field(default_factory=list)
    transcript: list[TranscriptLine] = Field(default_factory=list)
