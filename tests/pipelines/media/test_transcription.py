"""Transcription of real recorded speech with the embedded engine: words where they are said,
accurately enough, and spans whose boundaries fall in the middle of words joined without losing
or repeating one."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import jiwer
import numpy as np
import pytest

from jobs.contract.settings import Settings
from pipelines.media.models import Span
from pipelines.media.transcription.engine import Engine, engine_for
from pipelines.media.transcription.models import TranscriptSpan, Word
from pipelines.media.transcription.pieces import split_speech
from pipelines.media.transcription.reconcile import join_spans
from pipelines.media.transcription.sound import read_speech
from pipelines.media.transcription.sphinx import PocketsphinxEngine
from pipelines.media.transcription.utterances import find_utterances
from tests.pipelines.conftest import Spoken

# PocketSphinx's word error rate on these five LibriVox utterances is 0.28 (benchmarks/
# transcription.py, the README): its language model is generic, and 19th-century prose
# ("prudently", "amiable") is far from it. 0.35 fails a real regression (a lost word in every
# utterance, times off, a broken decoder) and passes the engine as it is.
MAX_WER = 0.35
# Where a word is said: within this much of its recording.
TIME_TOLERANCE_SECONDS = 0.5
OVERLAP = 5.0  # as the stage hears spans


@pytest.fixture(scope="module")
def engine() -> Engine:
    return engine_for(Settings())


@pytest.fixture(scope="module")
def whole(spoken: Spoken, engine: Engine) -> list[Word]:
    speech = read_speech(spoken.path, Span(start=0.0, end=1e6), sample_rate=engine.sample_rate)
    return engine.transcribe(speech, lambda _done: None).words


def words_text(words: list[Word]) -> str:
    return " ".join(word.text for word in words)


def test_the_embedded_engine_hears_real_speech_well_enough(
    spoken: Spoken, whole: list[Word]
) -> None:
    error_rate = jiwer.wer(spoken.text, words_text(whole))

    assert error_rate <= MAX_WER, words_text(whole)
    assert all(0.0 <= word.confidence <= 1.0 for word in whole)
    assert all(a.end <= b.start for a, b in itertools.pairwise(whole))


def test_words_are_timed_where_they_are_said(spoken: Spoken, whole: list[Word]) -> None:
    def place_of(word: Word) -> int | None:
        for index, (start, end) in enumerate(spoken.places):
            tolerant = (start - TIME_TOLERANCE_SECONDS, end + TIME_TOLERANCE_SECONDS)
            if tolerant[0] <= word.start and word.end <= tolerant[1]:
                return index
        return None

    places = [place_of(word) for word in whole]

    assert None not in places, [w for w, p in zip(whole, places, strict=True) if p is None]
    for index, (start, _end) in enumerate(spoken.places):
        said = [word for word, place in zip(whole, places, strict=True) if place == index]
        assert said, f"nothing heard in recording {index}"
        # Each recording starts with at most a breath of silence before its first word.
        assert abs(said[0].start - start) <= TIME_TOLERANCE_SECONDS, (index, said[0])


def test_the_voice_detector_finds_each_utterance_and_skips_the_pauses(
    spoken: Spoken, engine: Engine
) -> None:
    speech = read_speech(spoken.path, Span(start=0.0, end=1e6), sample_rate=engine.sample_rate)

    found = [
        (a / speech.sample_rate, b / speech.sample_rate)
        for a, b in find_utterances(speech.samples, speech.sample_rate)
    ]

    assert len(found) == len(spoken.places), found
    for (start, end), (first, last) in zip(spoken.places, found, strict=True):
        assert first <= start + TIME_TOLERANCE_SECONDS
        assert last >= end - TIME_TOLERANCE_SECONDS


def test_a_span_is_cut_into_pieces_in_the_pauses_between_words(
    spoken: Spoken, engine: Engine, whole: list[Word]
) -> None:
    speech = read_speech(spoken.path, Span(start=0.0, end=1e6), sample_rate=engine.sample_rate)

    pieces = split_speech(speech, target_seconds=5.0)

    # Five utterances of about 5 s, a second apart: a piece for each, or for two.
    assert len(pieces) >= 3, [piece.start for piece in pieces]
    assert pieces[0].start == speech.start
    assert sum(len(piece.samples) for piece in pieces) == len(speech.samples)
    cuts = [piece.start for piece in pieces[1:]]
    assert not [(cut, w) for cut in cuts for w in whole if w.start < cut < w.end]
    pauses = [(end, start) for (_s, end), (start, _e) in itertools.pairwise(spoken.places)]
    assert all(any(end < cut < start for end, start in pauses) for cut in cuts), cuts


def test_a_piece_is_heard_alike_whatever_its_decoder_heard_before(
    spoken: Spoken, engine: Engine
) -> None:
    # A resumed span decodes its remaining pieces in a new decoding process: the words and
    # their confidences must be those the process that decoded the earlier pieces finds.
    speech = read_speech(spoken.path, Span(start=0.0, end=1e6), sample_rate=engine.sample_rate)
    pieces = split_speech(speech, target_seconds=5.0)
    after_the_others = [engine.transcribe(piece, lambda _done: None).words for piece in pieces][-1]

    alone = PocketsphinxEngine(Settings()).transcribe(pieces[-1], lambda _done: None).words

    assert alone
    assert alone == after_the_others


def as_m4a(wav: Path, path: Path) -> Path:
    """The recording as AAC in MP4: compressed, so a span is read by seeking and settling."""
    with av.open(str(wav)) as source, av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for frame in source.decode(audio=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def m4a(spoken: Spoken, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return as_m4a(spoken.path, tmp_path_factory.mktemp("m4a") / "librivox.m4a")


def hear(source: Path, span: Span, duration: float, engine: Engine) -> TranscriptSpan:
    """What a transcription item hears of `span`: the span and an overlap either side."""
    heard = Span(start=max(0.0, span.start - OVERLAP), end=min(duration, span.end + OVERLAP))
    speech = read_speech(source, heard, sample_rate=engine.sample_rate)
    words = engine.transcribe(speech, lambda _done: None).words
    return TranscriptSpan(span=span, heard=heard, engine="", language="", words=words)


def test_boundaries_in_the_middle_of_words_cut_and_repeat_none(
    spoken: Spoken, m4a: Path, engine: Engine
) -> None:
    duration = spoken.places[-1][1] + 1.0
    whole = hear(m4a, Span(start=0.0, end=duration), duration, engine).words
    split = [whole[5], whole[20], whole[40]]  # words well inside utterances
    bounds = [0.0, *(round(word.middle, 2) for word in split), duration]
    spans = [Span(start=a, end=b) for a, b in itertools.pairwise(bounds)]

    joined, gaps = join_spans([hear(m4a, span, duration, engine) for span in spans], duration)

    assert gaps == []
    for word in split:
        same = [w for w in joined if w.text == word.text and abs(w.middle - word.middle) < 0.5]
        assert len(same) == 1, (word, same)
    assert all(a.end <= b.start + 0.05 for a, b in itertools.pairwise(joined))
    # The same words as hearing the recording whole, but for one or two near the spans' edges
    # (an utterance cut short by an overlap's end is normalised a little differently).
    assert jiwer.wer(words_text(whole), words_text(joined)) <= 0.06
    assert abs(len(joined) - len(whole)) <= 1


def test_a_span_read_by_seeking_into_compressed_sound_keeps_its_times(
    spoken: Spoken, m4a: Path, engine: Engine
) -> None:
    start, end = spoken.places[2]
    whole = read_speech(m4a, Span(start=0.0, end=1e6), sample_rate=engine.sample_rate)

    part = read_speech(m4a, Span(start=start, end=end), sample_rate=engine.sample_rate)

    assert part.start == pytest.approx(start, abs=1e-3)
    original = whole.samples[round(start * 16000) : round(end * 16000)].astype(np.float64)
    lag = _lag(original, part.samples.astype(np.float64))
    assert abs(lag) <= 0.01 * 16000, f"the span's sound is {lag / 16000:.3f} s off"


def _lag(expected: np.ndarray, got: np.ndarray) -> int:
    """By how many samples `got` is late against `expected` (cross-correlation peak)."""
    size = min(len(expected), len(got))
    a, b = expected[:size], got[:size]
    spectrum = np.fft.rfft(b, 2 * size) * np.conj(np.fft.rfft(a, 2 * size))
    correlation = np.fft.irfft(spectrum)
    peak = int(np.argmax(correlation))
    return peak if peak < size else peak - 2 * size
