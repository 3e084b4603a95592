"""The `media-analysis` pipeline's contract: its input, its options and its ten stages (the
four analyses run side by side once the probe is done, the highlights join all four, and the
thumbnails and clips are cut side by side)."""

from __future__ import annotations

import re

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from jobs.contract.pipeline import FanOut, ItemFailure, PipelineSpec, StageSpec
from jobs.contract.sources import (
    SOURCE_ERROR,
    SOURCE_RULES,
    SourceKind,
    SourceNotAllowed,
    SourceRules,
    check_source,
    source_kind,
)

_TOKEN = re.compile(r"[\w']+")


def tokens(text: str) -> list[str]:
    """`text` as keyword matching sees it: case-folded runs of letters, digits and apostrophes
    (so "Cold-hearted," and "cold hearted" are the same two words)."""
    return [token.strip("'") for token in _TOKEN.findall(text.casefold()) if token.strip("'")]


# Keywords: few and short, so matching stays cheap and they fit in a highlight's reasons.
MAX_KEYWORDS = 20
MAX_KEYWORD_CHARS = 60
MAX_KEYWORD_WORDS = 5


class MediaOptions(BaseModel):
    """How many highlights to find, how long each may be, how big their thumbnails are."""

    model_config = ConfigDict(extra="forbid")

    highlights: int = Field(default=5, ge=1, le=50, description="How many highlights to return.")
    min_highlight_seconds: float = Field(default=5.0, ge=1.0, le=600.0)
    max_highlight_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    thumbnail_width: int = Field(default=320, ge=64, le=1920)
    transcribe: bool = Field(
        default=True, description="Transcribe the speech (words, times, captions)."
    )
    clips: bool = Field(
        default=True,
        description="Cut each highlight, with a second of lead-in, as a video (or audio) file.",
    )
    keywords: list[str] = Field(
        default_factory=list,
        max_length=MAX_KEYWORDS,
        description="Words or phrases to look for in the speech (case-insensitive): where one "
        "is said is a highlight reason, and scores higher.",
        examples=[["clutch", "no way"]],
    )

    @field_validator("keywords")
    @classmethod
    def _keywords_said_in_words(cls, keywords: list[str]) -> list[str]:
        kept: list[str] = []
        for keyword in keywords:
            keyword = " ".join(keyword.split())
            said = tokens(keyword)
            if not said or len(keyword) > MAX_KEYWORD_CHARS or len(said) > MAX_KEYWORD_WORDS:
                raise ValueError(
                    f"a keyword is 1 to {MAX_KEYWORD_WORDS} words of letters or digits, at most "
                    f"{MAX_KEYWORD_CHARS} characters: {keyword[:MAX_KEYWORD_CHARS]!r} is not"
                )
            if said not in [tokens(k) for k in kept]:
                kept.append(keyword)
        return kept

    @model_validator(mode="after")
    def _lengths_in_order(self) -> MediaOptions:
        if self.max_highlight_seconds < self.min_highlight_seconds:
            raise ValueError("max_highlight_seconds is below min_highlight_seconds")
        return self


class MediaInput(BaseModel):
    """A recording to analyse (and optionally its chat log): upload id, gs:// or https://."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=2048, examples=["https://example.com/vod.mp4"])
    chat: str | None = Field(default=None, min_length=1, max_length=2048)
    options: MediaOptions = Field(default_factory=MediaOptions)

    @field_validator("source", "chat")
    @classmethod
    def _allowed_source(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Submit passes the deployment's SourceRules. Stored input read back in the processor
        # has none: there the fetch stage checks each source itself, so a source refused now
        # fails that job once (SOURCE_NOT_ALLOWED) instead of failing to parse on every retry.
        rules = (info.context or {}).get(SOURCE_RULES)
        if value is not None and isinstance(rules, SourceRules):
            try:
                check_source(value, rules)
            except SourceNotAllowed as exc:
                raise PydanticCustomError(SOURCE_ERROR, exc.message) from None
        return value


_STAGES = "pipelines.media.stages"
STAGES = [
    # A download checkpoints its offset, so a delivery that reaches its time budget hands on to
    # the next one. The limit sits above any budget so that it never ends a download that is
    # still moving (one that never checkpoints still stops at the budget, STAGE_TIMEOUT).
    StageSpec(
        "fetch",
        "pipelines.media.fetching:fetch",
        "Downloading",
        weight=1.0,
        timeout_seconds=12 * 3600,
    ),
    StageSpec("probe", f"{_STAGES}:probe", "Reading the media", weight=0.2, timeout_seconds=120),
    # The analyses read only the probe's findings (and the source): they run at once.
    # Each fans out over spans of the recording; a span that cannot be read is a gap in the
    # analysis, not a lost job (a corrupt 3 minutes of a 4-hour VOD keep the other 237).
    StageSpec(
        "audio",
        f"{_STAGES}:audio",
        "Measuring loudness",
        weight=3.0,
        timeout_seconds=480,
        needs=("probe",),
        fan_out=FanOut(f"{_STAGES}:audio_span", f"{_STAGES}:audio_reduce", ItemFailure.GAP),
    ),
    StageSpec(
        "scenes",
        f"{_STAGES}:scenes",
        "Finding scene cuts",
        weight=4.0,
        timeout_seconds=480,
        needs=("probe",),
        fan_out=FanOut(f"{_STAGES}:scenes_span", f"{_STAGES}:scenes_reduce", ItemFailure.GAP),
    ),
    StageSpec(
        "chat",
        f"{_STAGES}:chat",
        "Reading the chat",
        weight=0.5,
        timeout_seconds=240,
        needs=("probe",),
    ),
    # The heaviest analysis: spans are shorter (LONGRUN_TRANSCRIPT_SPAN_SECONDS) and each item
    # hears a few seconds past its span, so no word on a boundary is cut or counted twice.
    # An item checkpoints after each piece of its span: like a download, its limit sits above
    # any budget, so a delivery that saved a piece and runs out of budget continues in the
    # next (no attempt counted); one that saved none still stops at the budget (STAGE_TIMEOUT).
    StageSpec(
        "transcribe",
        f"{_STAGES}:transcribe",
        "Transcribing",
        weight=6.0,
        timeout_seconds=3600,
        needs=("probe",),
        fan_out=FanOut(
            f"{_STAGES}:transcribe_span", f"{_STAGES}:transcribe_reduce", ItemFailure.GAP
        ),
    ),
    StageSpec(
        "highlights",
        f"{_STAGES}:highlights",
        "Finding highlights",
        weight=0.3,
        timeout_seconds=120,
        needs=("audio", "scenes", "chat", "transcribe"),
    ),
    StageSpec(
        "thumbnails", f"{_STAGES}:thumbnails", "Cutting thumbnails", weight=1.0, timeout_seconds=300
    ),
    # One item per highlight, beside the thumbnails: a clip that cannot be cut is missing from
    # the result, not a lost job. Most clips are copies (seconds); a re-encoded one runs near
    # real time, so the limit bounds a long highlight's re-encode, not a copy.
    StageSpec(
        "clips",
        f"{_STAGES}:clips",
        "Cutting clips",
        weight=1.5,
        timeout_seconds=480,
        needs=("highlights",),
        fan_out=FanOut(f"{_STAGES}:clip", f"{_STAGES}:clips_reduce", ItemFailure.GAP),
    ),
    StageSpec(
        "report",
        f"{_STAGES}:report",
        "Writing the report",
        weight=0.5,
        timeout_seconds=120,
        needs=("thumbnails", "clips"),
    ),
]


# Processor seconds a media job is expected to take. The input declares no size or duration,
# so this is a fixed figure: the benchmark analyses 10 min of 720p video in about 30 s on one
# vCPU, so an hour of video takes about 3 min; 10 min leaves room for the fetch and retries.
MEDIA_ESTIMATE_SECONDS = 600.0
# ... and transcribing an hour of speech with the embedded engine takes 18-36 min of CPU (a
# real-time factor of 0.3-0.6 on this machine, by its load; benchmarks/transcription.py).
TRANSCRIBE_ESTIMATE_SECONDS = 1800.0


def _estimate(params: MediaInput, usd_per_second: float) -> float:
    transcribing = TRANSCRIBE_ESTIMATE_SECONDS if params.options.transcribe else 0.0
    return (MEDIA_ESTIMATE_SECONDS + transcribing) * usd_per_second


def _uploads(params: MediaInput) -> list[str]:
    sources = [params.source, params.chat]
    return [s for s in sources if s is not None and source_kind(s) == SourceKind.UPLOAD]


MEDIA_ANALYSIS = PipelineSpec(
    name="media-analysis",
    description="Finds the highlights of a recording from its loudness, scene cuts, chat and "
    "speech, and transcribes it.",
    input_model=MediaInput,
    plan=lambda _params: list(STAGES),
    example_input={"source": "https://example.com/vod.mp4"},
    result=f"{_STAGES}:result",
    uploads=_uploads,
    estimate=_estimate,
    default_max_cost_usd=2.00,
)
