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
    """A loud moment: `time` is its onset, `lufs` the loudest momentary loudness within it."""

    time: float
    lufs: float


class AudioAnalysis(BaseModel):
    """The loudness of the recording by ITU-R BS.1770-4 / EBU R 128, window by window, and what
    stands out in it."""

    window_seconds: float = Field(description="the series' step: 0.4 s, one momentary block")
    duration_seconds: float
    momentary_lufs: list[float] = Field(
        description="momentary loudness (400 ms) of each window, floored at -100"
    )
    short_term_lufs: list[float] = Field(
        description="short-term loudness (the 3 s ending with each window), floored at -100"
    )
    integrated_lufs: float | None = Field(
        default=None, description="gated integrated loudness; None if nothing is above -70 LUFS"
    )
    loudness_range_lu: float | None = Field(default=None, description="LRA, EBU Tech 3342")
    typical_lufs: float | None = Field(
        default=None, description="median short-term loudness of the blocks LRA counts"
    )
    sample_peak_dbfs: float = Field(default=-100.0, description="largest sample, floored at -100")
    silences: list[Span] = Field(default_factory=list)
    peaks: list[Peak] = Field(default_factory=list)
    gaps: list[Span] = Field(
        default_factory=list,
        description="Stretches that could not be read: their windows hold -100 and count as "
        "neither silence nor loud moment, and their blocks count in no measure",
    )
    undecodable: list[Span] = Field(
        default_factory=list, description="Damaged stretches skipped; no silence is found in one"
    )


class LoudnessHistogram(BaseModel):
    """How many 100 ms-step blocks fell in each 0.01 LU bin above -70 LUFS, from `first_bin`."""

    first_bin: int = Field(ge=0)
    counts: list[int] = Field(default_factory=list)


class LoudnessSpan(BaseModel):
    """The loudness of one span: the windows of the recording-wide grid that start within it,
    and its blocks for the whole recording's measures (those ending within it)."""

    span: Span
    window_seconds: float
    first_window: int = Field(ge=0, description="index in the whole recording of the first window")
    momentary_lufs: list[float]
    short_term_lufs: list[float]
    momentary_blocks: LoudnessHistogram
    short_term_blocks: LoudnessHistogram
    sample_peak: float = Field(ge=0.0, description="largest sample; 1.0 is full scale")
    undecodable: list[Span] = Field(
        default_factory=list, description="Damaged stretches skipped within the span"
    )


class SceneAnalysis(BaseModel):
    """Where the picture changes abruptly, from frames sampled `sample_fps` times a second."""

    sample_fps: float
    cuts: list[float] = Field(
        default_factory=list, description="Hard cuts: the time of each one's first new frame"
    )
    frames_examined: int
    gaps: list[Span] = Field(
        default_factory=list, description="Stretches that could not be read: no cut across them"
    )
    undecodable: list[Span] = Field(default_factory=list, description="Damaged stretches skipped")


class SceneTail(BaseModel):
    """A comparison of the recording's last frame with the sample before it."""

    time: float
    difference: float
    peak: float
    peak_time: float
    rest: float


class SceneSpan(BaseModel):
    """The scene samples of one span: those of the recording-wide sample grid within it, each
    with its difference from the sample before it (for the first, the last one before the span,
    at `previous_time`; None if there was none, when the first sample has no difference)."""

    span: Span
    sample_fps: float
    times: list[float]
    differences: list[float] = Field(description="how much each sample's picture changed, 0-100")
    peaks: list[float] = Field(
        default_factory=list,
        description="per comparison: the largest change between consecutive frames since the "
        "sample before (a frame's brightness on a coarse grid, 0-255)",
    )
    peak_times: list[float] = Field(
        default_factory=list, description="per comparison: the frame after that largest change"
    )
    rests: list[float] = Field(
        default_factory=list,
        description="per comparison: the median of the other changes between consecutive frames",
    )
    previous_time: float | None = None
    undecodable: list[Span] = Field(
        default_factory=list, description="Damaged stretches skipped within the span"
    )
    tail: SceneTail | None = Field(
        default=None,
        description="the recording's last frame compared with its last sample, when the span "
        "reads to the end of the recording and frames follow that sample",
    )

    @model_validator(mode="after")
    def _one_difference_per_comparison(self) -> SceneSpan:
        compared = len(self.times) - (self.previous_time is None and len(self.times) > 0)
        if len(self.differences) != compared:
            raise ValueError("there must be one difference per sample compared with another")
        frame_level = (len(self.peaks), len(self.peak_times), len(self.rests))
        if frame_level != (compared,) * 3:
            raise ValueError("there must be one peak, peak time and rest per comparison")
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
