"""Speech in the highlights: keywords said in real recorded speech become highlight reasons and
lead the highlights, loud and fast speech count as excitement, and every highlight carries the
transcript lines said in it."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from jobs.contract.settings import Settings
from pipelines.media.audio import analyse_audio
from pipelines.media.highlights import score_highlights
from pipelines.media.models import AudioAnalysis, Highlight, MediaInfo, Span, TranscriptLine
from pipelines.media.report_markdown import markdown_report
from pipelines.media.spec import MAX_KEYWORDS, MediaOptions
from pipelines.media.speech import speech_signals
from pipelines.media.transcription.captions import MAX_HIGHLIGHT_LINES
from pipelines.media.transcription.engine import engine_for
from pipelines.media.transcription.keywords import find_keywords
from pipelines.media.transcription.models import Word, WordTimes
from pipelines.media.transcription.sound import read_speech
from samples.speech import join_recordings
from tests.pipelines.conftest import Spoken

# Where the LibriVox reader says them (the third utterance, "... rather cold hearted and rather
# selfish ...", lies at 13.1-18.4 s of the joined recording).
SELFISH_AT = (15.0, 17.5)


def transcribe(path: Path) -> WordTimes:
    engine = engine_for(Settings())
    speech = read_speech(path, Span(start=0.0, end=1e6), sample_rate=engine.sample_rate)
    return WordTimes.of(engine.transcribe(speech, lambda _done: None).words)


@pytest.fixture(scope="module")
def said(spoken: Spoken) -> WordTimes:
    return transcribe(spoken.path)


@pytest.fixture(scope="module")
def loudness(spoken: Spoken) -> AudioAnalysis:
    return analyse_audio(spoken.path)


def highlights_of(said: WordTimes, audio: AudioAnalysis, **options: object) -> list[Highlight]:
    return score_highlights(
        duration_seconds=audio.duration_seconds,
        audio=audio,
        scenes=None,
        chat=None,
        options=MediaOptions.model_validate(options),
        said=said,
    )


def test_a_keyword_said_is_a_highlight_reason_and_leads_the_highlights(
    said: WordTimes, loudness: AudioAnalysis
) -> None:
    found = highlights_of(said, loudness, highlights=3, keywords=["SELFISH", "cold-hearted"])

    best = max(found, key=lambda h: h.score)
    assert best.start <= SELFISH_AT[0]
    assert SELFISH_AT[1] <= best.end
    assert "said 'SELFISH' at 0:16" in best.reasons, best.reasons
    assert any(reason.startswith("said 'cold-hearted' at 0:1") for reason in best.reasons)
    assert "selfish" in " ".join(line.text for line in best.transcript)
    unraised = highlights_of(said, loudness, highlights=3)
    assert best.score > max(h.score for h in unraised)
    assert not any("said '" in reason for h in unraised for reason in h.reasons)


def test_a_phrase_matches_only_its_words_said_one_after_another(said: WordTimes) -> None:
    words = said.words()

    assert [hit.keyword for hit in find_keywords(words, ["Rather  Selfish"])] == ["Rather  Selfish"]
    assert find_keywords(words, ["selfish rather"]) == []
    assert find_keywords(words, ["self"]) == []  # whole words only
    amiable = find_keywords(words, ["amiable"])
    assert len(amiable) == 2
    assert amiable[0].start < amiable[1].start


def test_every_highlight_carries_the_lines_said_in_it(
    said: WordTimes, loudness: AudioAnalysis
) -> None:
    found = highlights_of(said, loudness, highlights=5, keywords=["amiable", "selfish"])

    assert found
    for highlight in found:
        assert 0 < len(highlight.transcript) <= MAX_HIGHLIGHT_LINES
        for line in highlight.transcript:
            assert line.end > highlight.start
            assert line.start < highlight.end
            assert line.text


def test_speech_louder_than_the_usual_voice_is_excited(spoken: Spoken, tmp_path: Path) -> None:
    # The five utterances twice, the fourth of the second round 4 times as loud (+12 dB).
    path = tmp_path / "shout.wav"
    places = join_recordings(spoken.recordings * 2, path)
    shout = places[8]
    with wave.open(str(path)) as file:
        rate = file.getframerate()
        samples = np.frombuffer(file.readframes(file.getnframes()), dtype=np.int16)
    louder = samples.astype(np.float64)
    first, last = round(shout[0] * rate), round(shout[1] * rate)
    louder[first:last] *= 4.0
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.clip(louder, -32768, 32767).astype(np.int16).tobytes())

    found = highlights_of(transcribe(path), analyse_audio(path), highlights=1)

    assert len(found) == 1
    assert found[0].start <= shout[1]
    assert shout[0] <= found[0].end
    assert any(reason.startswith("loud speech: 1") for reason in found[0].reasons), found


def test_words_said_twice_as_fast_as_usual_are_fast_speech() -> None:
    # A minute of steady talk at 2 words a second, with 8 s at 4 words a second from 30 s.
    times = (
        [t / 2 for t in range(60)]
        + [30 + t / 4 for t in range(32)]
        + [38 + t / 2 for t in range(44)]
    )
    words = [Word(text="word", start=t, end=t + 0.2, confidence=1.0) for t in times]

    signals = speech_signals(
        WordTimes.of(words), cells=60, grid_seconds=1.0, loudness=None, keywords=[]
    )

    assert signals is not None
    assert signals.usual_rate == pytest.approx(2.0, abs=0.3)
    fast = np.flatnonzero(signals.fast > 0)
    assert fast.size
    assert fast.min() >= 29
    assert fast.max() <= 40
    assert signals.excited[33] == 1.0
    assert any(r.startswith("fast speech: 4.") for r in signals.reasons(30.0, 38.0))
    assert not any(r.startswith("fast speech") for r in signals.reasons(5.0, 20.0))


def test_nothing_said_adds_no_speech_signal() -> None:
    assert (
        speech_signals(WordTimes(), cells=10, grid_seconds=1.0, loudness=None, keywords=["a"])
        is None
    )


@pytest.mark.parametrize(
    "keywords",
    [
        [""],
        ["..."],
        ["x" * 61],
        ["one two three four five six"],
        [f"word{n}" for n in range(MAX_KEYWORDS + 1)],
    ],
)
def test_keywords_are_few_short_words(keywords: list[str]) -> None:
    with pytest.raises(ValidationError):
        MediaOptions(keywords=keywords)


def test_keywords_differing_only_in_case_or_spacing_are_one() -> None:
    options = MediaOptions(keywords=["No way", "no  WAY", " clutch "])

    assert options.keywords == ["No way", "clutch"]


def test_the_readable_report_lists_each_highlight_with_its_reasons_and_lines() -> None:
    media = MediaInfo(format_name="wav", duration_seconds=3725.0, has_audio=True, has_video=False)
    said = TranscriptLine(start=3723.0, end=3724.5, text="that was *the* clutch")
    highlight = Highlight(
        start=3720.0, end=3725.0, score=0.9, reasons=["said '[x](y)' at 1:02:03"], transcript=[said]
    )

    text = markdown_report(media, [highlight])

    assert "1:02:05 of audio (wav), 1 highlight." in text
    assert "## 1. 1:02:00 to 1:02:05 (score 0.90)" in text
    assert "- said '\\[x\\]\\(y\\)' at 1:02:03" in text  # a keyword is data, not a link
    assert "> **1:02:03** that was \\*the\\* clutch" in text
